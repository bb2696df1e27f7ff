import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackedPackage } from '../../src/guest/debian-package.js';
import { hostXattr, u32 } from '../integration/host-xattr.js';
import { NOBODY, virtfsAsNobody } from './as-nobody.js';

// `virtfs boot` as an ordinary host user (nobody): the guest's root filesystem is a directory that
// user owns, served mapped-xattr from the same process, under software emulation.

/** A root filesystem of busybox alone, owned by nobody as a user's own directory would be. */
function busyboxRoot(parent: string, init: string): string {
  const root = join(parent, 'root');
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(join(unpackedPackage('busybox-static'), 'bin', 'busybox'), join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'ls', 'id', 'echo', 'cat', 'chown', 'chmod', 'mknod', 'stat', 'poweroff', 'sync', 'mount']) symlinkSync('busybox', join(root, 'bin', applet));
  writeFileSync(join(root, 'sbin', 'init'), init, { mode: 0o755 });
  chownTree(root);
  return root;
}

function chownTree(p: string): void {
  const st = lstatSync(p);
  chownSync(p, NOBODY, NOBODY);
  if (st.isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e));
}

describe('virtfs boot: a guest whose root is a user\'s directory', { timeout: 15 * 60_000 }, () => {
  let parent: string;
  before(() => {
    parent = mkdtempSync('/var/tmp/virtfs-boot-');
    chmodSync(parent, 0o755);
  });
  after(() => rmSync(parent, { recursive: true, force: true }));

  test('runs a command as guest root, exits with its status, and keeps guest owners and devices in user.virtfs.*', async () => {
    const root = busyboxRoot(parent, '#!/bin/sh\npoweroff -f\n');
    const r = await virtfsAsNobody([
      'boot', root, '--', 'sh', '-c',
      'id -u; echo made > /made; chown 1234:5678 /made; chmod 4755 /made; mknod /null-copy c 1 3; stat -c "%F %t:%T" /null-copy; exit 7',
    ]);
    assert.equal(r.status, 7, r.output);
    assert.match(r.output, /^0\r?$/m, 'the command ran as the guest\'s root');
    assert.match(r.output, /character special file 1:3/);
    const made = lstatSync(join(root, 'made'));
    assert.deepEqual([made.uid, made.gid, made.mode & 0o7777], [NOBODY, NOBODY, 0o600], 'on the host: the user\'s own file, no setuid bit');
    assert.deepEqual(hostXattr(join(root, 'made'), 'user.virtfs.uid'), u32(1234));
    assert.deepEqual(hostXattr(join(root, 'made'), 'user.virtfs.gid'), u32(5678));
    assert.deepEqual(hostXattr(join(root, 'made'), 'user.virtfs.mode'), u32(0o104755));
    const node = lstatSync(join(root, 'null-copy'));
    assert.ok(node.isFile(), 'a guest device node is a plain file on the host');
    assert.equal(node.uid, NOBODY);
    assert.equal(hostXattr(join(root, 'null-copy'), 'user.virtfs.mode')!.readUInt32LE() & 0o170000, 0o020000);
  });

  test('boots the root\'s /sbin/init as pid 1 and exits 0 when it powers off', async () => {
    rmSync(join(parent, 'root'), { recursive: true, force: true });
    const root = busyboxRoot(parent, '#!/bin/sh\necho "init is pid $$"\necho booted > /booted\nsync\npoweroff -f\n');
    const r = await virtfsAsNobody(['boot', root]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /init is pid 1/);
    assert.equal(readFileSync(join(root, 'booted'), 'utf8'), 'booted\n');
  });

  test('a root without /sbin/init is a one-line error, not a hang', async () => {
    rmSync(join(parent, 'root', 'sbin', 'init'));
    const r = await virtfsAsNobody(['boot', join(parent, 'root')]);
    assert.equal(r.status, 1, r.output);
    assert.match(r.output, /^virtfs: the guest could not boot: the root filesystem has no \/sbin\/init$/m);
  });

  test('a directory that does not exist is refused before anything starts', async () => {
    const r = await virtfsAsNobody(['boot', join(parent, 'nowhere')]);
    assert.equal(r.status, 1);
    assert.match(r.output, /^virtfs: .*nowhere: no such directory$/m);
  });
});
