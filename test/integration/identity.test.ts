import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, writeFileSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { LinuxOpenFlag as O, SetattrValid as V } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import type { IdentityPolicy } from '../../src/index.js';
import { rejectsWith } from './assertions.js';
import { startFixture, type Fixture } from './server-fixture.js';
import { b, WireClient } from './wire-client.js';

// Identity policy at attach: allow lists, squashing and id maps, through the wire. The server
// runs as root here, so everything a squashed user cannot do is the policy's doing.
const asRoot = process.getuid?.() === 0 ? false : 'the server must run as root for squashing to mean anything';

async function withServer(identity: Partial<IdentityPolicy>, fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const fx = await startFixture({ identity });
  chmodSync(fx.root, 0o777);
  try {
    await fn(fx);
  } finally {
    await fx.close();
  }
}

const owner = (path: string) => `${lstatSync(path).uid}:${lstatSync(path).gid}`;

describe('--allow-users', () => {
  test('only listed guest users may attach; others get EPERM', () =>
    withServer({ allowUsers: new Set([1000]) }, async (fx) => {
      const ok = await WireClient.attach(fx.port, 1000);
      ok.close();
      await rejectsWith(WireClient.attach(fx.port, 0), Errno.EPERM);
      await rejectsWith(WireClient.attach(fx.port, 1001), Errno.EPERM);
    }));
});

describe('--squash root', { skip: asRoot }, () => {
  test('guest root creates as the anonymous user', () =>
    withServer({ squash: 'root' }, async (fx) => {
      const c = await WireClient.attach(fx.port, 0);
      await c.walk(0, 1, '');
      await c.rpc('Tlcreate', { fid: 1, name: b('made'), flags: O.RDWR, mode: 0o644, gid: 0 });
      await c.rpc('Tmkdir', { dfid: 0, name: b('dir'), mode: 0o755, gid: 0 });
      c.close();
      assert.equal(owner(join(fx.root, 'made')), '65534:65534');
      assert.equal(owner(join(fx.root, 'dir')), '65534:65534');
    }));

  test('guest root cannot read root’s private files, chown, make devices or set privileged xattrs', () =>
    withServer({ squash: 'root' }, async (fx) => {
      writeFileSync(join(fx.root, 'secret'), 'x', { mode: 0o600 });
      writeFileSync(join(fx.root, 'public'), 'pub', { mode: 0o644 });
      const c = await WireClient.attach(fx.port, 0);
      await c.walk(0, 1, 'secret');
      await rejectsWith(c.rpc('Tlopen', { fid: 1, flags: O.RDONLY }), Errno.EACCES);
      await c.walk(0, 2, 'public');
      await c.rpc('Tlopen', { fid: 2, flags: O.RDONLY });
      assert.equal((await c.rpc('Tread', { fid: 2, offset: 0n, count: 10 })).data.toString(), 'pub');
      await rejectsWith(c.rpc('Tsetattr', { fid: 1, valid: V.UID, mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n }), Errno.EPERM);
      await rejectsWith(c.rpc('Tsetattr', { fid: 1, valid: V.MODE, mode: 0o4777, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n }), Errno.EPERM);
      await rejectsWith(c.rpc('Tmknod', { dfid: 0, name: b('mem'), mode: 0o020666, major: 1, minor: 1, gid: 0 }), Errno.EPERM);
      await c.walk(0, 3, '');
      await c.rpc('Tlcreate', { fid: 3, name: b('mine'), flags: O.RDWR, mode: 0o755, gid: 0 });
      await c.walk(0, 4, 'mine');
      await c.rpc('Txattrcreate', { fid: 4, name: b('security.capability'), attrSize: 4n, flags: 0 });
      await c.rpc('Twrite', { fid: 4, offset: 0n, data: Buffer.alloc(4) });
      await rejectsWith(c.rpc('Tclunk', { fid: 4 }), Errno.EPERM);
      c.close();
      assert.equal(lstatSync(join(fx.root, 'secret')).mode & 0o7777, 0o600);
      assert.throws(() => lstatSync(join(fx.root, 'mem')));
    }));

  test('other guest users are untouched', () =>
    withServer({ squash: 'root' }, async (fx) => {
      const c = await WireClient.attach(fx.port, 1000);
      await c.walk(0, 1, '');
      await c.rpc('Tlcreate', { fid: 1, name: b('made'), flags: O.RDWR, mode: 0o644, gid: 1001 });
      c.close();
      assert.equal(owner(join(fx.root, 'made')), '1000:1001');
    }));
});

describe('--squash all', { skip: asRoot }, () => {
  test('every guest user acts as the anonymous ids given', () =>
    withServer({ squash: 'all', anonUid: 4000, anonGid: 4001 }, async (fx) => {
      const c = await WireClient.attach(fx.port, 1000);
      await c.walk(0, 1, '');
      await c.rpc('Tlcreate', { fid: 1, name: b('made'), flags: O.RDWR, mode: 0o644, gid: 1000 });
      c.close();
      assert.equal(owner(join(fx.root, 'made')), '4000:4001');
    }));
});

describe('--uid-map / --gid-map', { skip: asRoot }, () => {
  const maps: Partial<IdentityPolicy> = { uidMap: [{ guest: 0, host: 100000, count: 65536 }], gidMap: [{ guest: 0, host: 100000, count: 65536 }] };

  test('ids are mapped in (creates, chown) and out (getattr)', () =>
    withServer(maps, async (fx) => {
      const c = await WireClient.attach(fx.port, 0);
      await c.walk(0, 1, '');
      await c.rpc('Tlcreate', { fid: 1, name: b('made'), flags: O.RDWR, mode: 0o644, gid: 5 });
      assert.equal(owner(join(fx.root, 'made')), '100000:100005');
      await c.walk(0, 2, 'made');
      await c.rpc('Tsetattr', { fid: 2, valid: V.UID | V.GID, mode: 0, uid: 1000, gid: 1000, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n });
      assert.equal(owner(join(fx.root, 'made')), '101000:101000');
      const a = await c.rpc('Tgetattr', { fid: 2, requestMask: 0x7ffn });
      assert.deepEqual([a.uid, a.gid], [1000, 1000]);
      c.close();
    }));

  test('host ids outside the map show as the anonymous ids; guest ids outside it cannot be given (EINVAL)', () =>
    withServer(maps, async (fx) => {
      writeFileSync(join(fx.root, 'hosts'), '');
      chownSync(join(fx.root, 'hosts'), 0, 0);
      mkdirSync(join(fx.root, 'mapped'));
      chownSync(join(fx.root, 'mapped'), 100007, 100008);
      const c = await WireClient.attach(fx.port, 0);
      await c.walk(0, 1, 'hosts');
      const a = await c.rpc('Tgetattr', { fid: 1, requestMask: 0x7ffn });
      assert.deepEqual([a.uid, a.gid], [65534, 65534]);
      await c.walk(0, 2, 'mapped');
      const m = await c.rpc('Tgetattr', { fid: 2, requestMask: 0x7ffn });
      assert.deepEqual([m.uid, m.gid], [7, 8]);
      await rejectsWith(c.rpc('Tsetattr', { fid: 2, valid: V.UID, mode: 0, uid: 70000, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n }), Errno.EINVAL);
      c.close();
    }));

  test('a guest user outside the map attaches as the anonymous user, confined', () =>
    withServer({ uidMap: [{ guest: 1000, host: 2000, count: 1 }] }, async (fx) => {
      writeFileSync(join(fx.root, 'secret'), 'x', { mode: 0o600 });
      const c = await WireClient.attach(fx.port, 0);
      await c.walk(0, 1, '');
      await c.rpc('Tlcreate', { fid: 1, name: b('made'), flags: O.RDWR, mode: 0o644, gid: 0 });
      await c.walk(0, 2, 'secret');
      await rejectsWith(c.rpc('Tlopen', { fid: 2, flags: O.RDONLY }), Errno.EACCES);
      c.close();
      assert.equal(owner(join(fx.root, 'made')), '65534:65534');
    }));
});
