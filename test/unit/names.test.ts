import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkComponent, checkExistingName, checkNewName } from '../../src/backend/local/names.js';
import { hostOpenFlags } from '../../src/backend/local/open-flags.js';
import { O } from '../../src/backend/local/sys.js';
import { LinuxOpenFlag as L } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { wantsModification } from '../../src/protocol/open-flags.js';
import { parseListenAddress } from '../../src/transport/listen-address.js';

const b = (s: string) => Buffer.from(s);
const errnoOf = (f: () => void) => {
  try {
    f();
    return 0;
  } catch (e) {
    return (e as { errno: number }).errno;
  }
};

test('a component may not be empty, contain "/" or NUL, or exceed 255 bytes', () => {
  assert.equal(errnoOf(() => checkComponent(b(''))), Errno.ENOENT);
  assert.equal(errnoOf(() => checkComponent(b('a/b'))), Errno.ENOENT);
  assert.equal(errnoOf(() => checkComponent(b('/'))), Errno.ENOENT);
  assert.equal(errnoOf(() => checkComponent(Buffer.from([0x61, 0, 0x62]))), Errno.EINVAL);
  assert.equal(errnoOf(() => checkComponent(Buffer.alloc(256, 0x61))), Errno.ENAMETOOLONG);
  assert.equal(errnoOf(() => checkComponent(Buffer.alloc(255, 0x61))), 0);
  assert.equal(errnoOf(() => checkComponent(Buffer.from([0xff, 0xfe]))), 0);
});

test('"." and ".." can be walked but not created, and not removed or renamed', () => {
  assert.equal(errnoOf(() => checkComponent(b('..'))), 0);
  assert.equal(errnoOf(() => checkNewName(b('.'))), Errno.EEXIST);
  assert.equal(errnoOf(() => checkNewName(b('..'))), Errno.EEXIST);
  assert.equal(errnoOf(() => checkExistingName(b('.'))), Errno.EINVAL);
  assert.equal(errnoOf(() => checkExistingName(b('..'))), Errno.ENOTEMPTY);
  assert.equal(errnoOf(() => checkNewName(b('...'))), 0);
});

test('open flags are translated by name to the host\'s values', () => {
  assert.equal(hostOpenFlags(L.RDONLY), O.O_RDONLY);
  assert.equal(hostOpenFlags(L.RDWR | L.APPEND | L.TRUNC), O.O_RDWR | O.O_APPEND | O.O_TRUNC);
  assert.equal(hostOpenFlags(L.WRONLY | L.SYNC), O.O_WRONLY | O.O_SYNC);
});

test('creation, directory, nofollow, direct and non-blocking flags are dropped on open', () => {
  const dropped = L.CREAT | L.EXCL | L.NOCTTY | L.NONBLOCK | L.DIRECT | L.LARGEFILE | L.DIRECTORY | L.NOFOLLOW | L.CLOEXEC | L.FASYNC;
  assert.equal(hostOpenFlags(L.RDONLY | dropped), O.O_RDONLY);
});

test('the Linux client\'s observed opendir flags (0304000) open read-only', () => {
  assert.equal(hostOpenFlags(0o304000), O.O_RDONLY);
  assert.equal(wantsModification(0o304000), false);
});

test('write access, truncation and append count as modification', () => {
  assert.equal(wantsModification(L.WRONLY), true);
  assert.equal(wantsModification(L.RDWR), true);
  assert.equal(wantsModification(L.RDONLY | L.TRUNC), true);
  assert.equal(wantsModification(L.RDONLY | L.APPEND), true);
  assert.equal(wantsModification(L.RDONLY | L.NOATIME), false);
});

test('listen addresses: tcp with IPv4 and IPv6, unix, stdio; anything else is a clear error', () => {
  assert.deepEqual(parseListenAddress('tcp:127.0.0.1:5640'), { kind: 'tcp', host: '127.0.0.1', port: 5640 });
  assert.deepEqual(parseListenAddress('tcp:[::1]:564'), { kind: 'tcp', host: '::1', port: 564 });
  assert.deepEqual(parseListenAddress('unix:/run/v.sock'), { kind: 'unix', path: '/run/v.sock' });
  assert.deepEqual(parseListenAddress('stdio'), { kind: 'stdio' });
  assert.throws(() => parseListenAddress('tcp:host'), /tcp:HOST:PORT/);
  assert.throws(() => parseListenAddress('tcp:h:70000'), /out of range/);
  assert.throws(() => parseListenAddress('udp:1.2.3.4:5'), /expected/);
  assert.throws(() => parseListenAddress('unix:'), /socket path/);
});
