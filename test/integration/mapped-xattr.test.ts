import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/client/client.js';
import { LinuxOpenFlag as O, QidType, SetattrValid as V } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { startFixture, type Fixture } from './server-fixture.js';
import { hostXattr, u32 } from './host-xattr.js';

// The mapped-xattr model through the wire, checked against the host's view of the same objects.
// (The kernel suite runs it again with the server as an ordinary user.)

let fx: Fixture;
let c: Client;
let root: number;
const p = (...parts: string[]) => join(fx.root, ...parts);
const S_IFMT = 0o170000;

before(async () => {
  fx = await startFixture({ security: { model: 'mapped-xattr', fmode: 0o640, dmode: 0o750 } });
  c = await Client.connect(fx.address);
  root = await c.attach({ nUname: 1000 });
});
after(async () => {
  c.close();
  await fx.close();
});

async function dir(): Promise<number> {
  return (await c.walk(root, [])).fid;
}

describe('mapped-xattr', () => {
  test('a created file is the server’s with --fmode on the host; the guest sees its own owner and mode', async () => {
    const d = await dir();
    await c.create(d, 'f', O.RDWR, 0o4755, 1001);
    const host = lstatSync(p('f'));
    assert.equal(host.uid, process.getuid!());
    assert.equal(host.mode, 0o100640);
    assert.deepEqual(hostXattr(p('f'), 'user.virtfs.uid'), u32(1000));
    assert.deepEqual(hostXattr(p('f'), 'user.virtfs.gid'), u32(1001));
    assert.deepEqual(hostXattr(p('f'), 'user.virtfs.mode'), u32(0o104755));
    const a = await c.getattr(d);
    assert.deepEqual([a.uid, a.gid, a.mode], [1000, 1001, 0o104755]);
  });

  test('directories get --dmode on the host and the guest’s mode in metadata', async () => {
    const d = await dir();
    await c.mkdir(d, 'sub', 0o1777, 5);
    assert.equal(lstatSync(p('sub')).mode, 0o040750);
    const { fid } = await c.walk(d, ['sub']);
    const a = await c.getattr(fid);
    assert.deepEqual([a.uid, a.gid, a.mode, a.qid.type], [1000, 5, 0o041777, QidType.DIR]);
  });

  test('a symlink is a regular host file holding its target; the guest reads it back and sees a symlink', async () => {
    const d = await dir();
    const qid = await c.symlink(d, 'ln', '../../etc/passwd', 7);
    assert.equal(qid.type, QidType.SYMLINK);
    assert.equal(lstatSync(p('ln')).isFile(), true);
    assert.equal(readFileSync(p('ln'), 'utf8'), '../../etc/passwd');
    const { fid, qids } = await c.walk(root, ['ln']);
    assert.equal(qids[0]!.type, QidType.SYMLINK);
    assert.equal((await c.readlink(fid)).toString(), '../../etc/passwd');
    const a = await c.getattr(fid);
    assert.deepEqual([a.mode, a.size, a.gid], [0o120777, 16n, 7]);
    await assert.rejects(c.open(fid), { errno: Errno.ENXIO });
  });

  test('device nodes and fifos are regular host files; type and rdev come from the metadata', async () => {
    const d = await dir();
    await c.mknod(d, 'null', 0o020666, 1, 3, 0);
    await c.mknod(d, 'fifo', 0o010600, 0, 0, 0);
    assert.equal(lstatSync(p('null')).isFile(), true);
    assert.equal(lstatSync(p('null')).mode & 0o7777, 0o640);
    const n = await c.getattr((await c.walk(root, ['null'])).fid);
    assert.deepEqual([n.mode, n.rdev], [0o020666, 0x103n]);
    const f = (await c.walk(root, ['fifo'])).fid;
    assert.equal((await c.getattr(f)).mode & S_IFMT, 0o010000);
    await assert.rejects(c.open(f), { errno: Errno.ENXIO });
  });

  test('chmod and chown change only the metadata: the host file stays as made', async () => {
    const d = await dir();
    await c.create(d, 'ch', O.RDWR, 0o600, 0);
    const { fid } = await c.walk(root, ['ch']);
    await c.setattr(fid, { valid: V.MODE, mode: 0o2711 });
    await c.setattr(fid, { valid: V.UID | V.GID, uid: 4242, gid: 4343 });
    await c.setattr(fid, { valid: V.GID, gid: 77 });
    const a = await c.getattr(fid);
    assert.deepEqual([a.mode, a.uid, a.gid], [0o102711, 4242, 77]);
    assert.equal(lstatSync(p('ch')).mode, 0o100640);
    assert.equal(lstatSync(p('ch')).uid, process.getuid!());
  });

  test('a write by anyone but root clears setuid, and setgid where the group may execute, in the metadata', async () => {
    const d = await dir();
    await c.create(d, 'suid', O.RDWR, 0o6775, 1000);
    const w = await Client.connect(fx.address);
    const wr = await w.attach({ nUname: 65534 });
    const { fid } = await w.walk(wr, ['suid']);
    await w.open(fid, O.WRONLY);
    await w.write(fid, 0n, Buffer.from('x'));
    w.close();
    assert.deepEqual(hostXattr(p('suid'), 'user.virtfs.mode'), u32(0o100775));
    const rootDir = await dir();
    await c.create(rootDir, 'suid-kept', O.RDWR, 0o4755, 1000);
    const r = await Client.connect(fx.address);
    const rr = await r.attach({ nUname: 0 });
    const kept = (await r.walk(rr, ['suid-kept'])).fid;
    await r.open(kept, O.WRONLY);
    await r.write(kept, 0n, Buffer.from('x'));
    r.close();
    assert.deepEqual(hostXattr(p('suid-kept'), 'user.virtfs.mode'), u32(0o104755));
  });

  test('where there is no metadata the host’s stat shows through', async () => {
    writeFileSync(p('plain'), 'x', { mode: 0o604 });
    mkdirSync(p('plaindir'), { mode: 0o711 });
    const a = await c.getattr((await c.walk(root, ['plain'])).fid);
    assert.deepEqual([a.mode, a.uid], [0o100604, process.getuid!()]);
    const b = await c.getattr((await c.walk(root, ['plaindir'])).fid);
    assert.equal(b.mode, 0o040711);
  });

  test('metadata cannot turn a host directory into anything else', async () => {
    mkdirSync(p('notalink'));
    execFileSync('setfattr', ['-n', 'user.virtfs.mode', '-v', `0x${u32(0o120777).toString('hex')}`, p('notalink')]);
    const { fid, qids } = await c.walk(root, ['notalink']);
    assert.equal(qids[0]!.type, QidType.DIR);
    assert.equal((await c.getattr(fid)).mode, 0o040777);
  });

  test('readdir leaves host files’ types to the guest’s stat and tells directories as they are', async () => {
    const d = await dir();
    await c.open(d);
    const entries = new Map((await c.readdir(d)).map((e) => [e.name.toString(), e.type]));
    assert.equal(entries.get('ln'), 0); // DT_UNKNOWN: a symlink to the guest
    assert.equal(entries.get('sub'), 4); // DT_DIR
  });

  test('the guest can neither see nor change user.virtfs.*', async () => {
    const { fid } = await c.walk(root, ['f']);
    await assert.rejects(c.xattrGet(fid, 'user.virtfs.uid'), { errno: Errno.ENODATA });
    await assert.rejects(c.xattrSet(fid, 'user.virtfs.uid', u32(0)), { errno: Errno.EACCES });
    await assert.rejects(c.xattrSet(fid, 'user.virtfs.mode', Buffer.alloc(0)), { errno: Errno.EACCES });
    assert.deepEqual((await c.xattrList(fid)).filter((n) => n.startsWith('user.virtfs')), []);
    assert.deepEqual(hostXattr(p('f'), 'user.virtfs.uid'), u32(1000));
  });

  test('security.*, trusted.* and ACLs are kept under user.virtfs., the guest’s own user.* as it is', async () => {
    const { fid } = await c.walk(root, ['f']);
    const cap = Buffer.from('0100000200000000000000000000000000000000', 'hex');
    await c.xattrSet(fid, 'security.capability', cap);
    await c.xattrSet(fid, 'trusted.overlay.opaque', Buffer.from('y'));
    await c.xattrSet(fid, 'system.posix_acl_access', Buffer.from('02000000010006000000000004000400000000002000040000000000', 'hex'));
    await c.xattrSet(fid, 'user.note', Buffer.from('hi'));
    assert.deepEqual(hostXattr(p('f'), 'user.virtfs.security.capability'), cap);
    assert.equal(hostXattr(p('f'), 'security.capability'), null);
    assert.equal(hostXattr(p('f'), 'user.virtfs.trusted.overlay.opaque')?.toString(), 'y');
    assert.ok(hostXattr(p('f'), 'user.virtfs.system.posix_acl_access'));
    assert.equal(hostXattr(p('f'), 'user.note')?.toString(), 'hi');
    assert.deepEqual((await c.xattrGet(fid, 'security.capability')), cap);
    assert.deepEqual((await c.xattrList(fid)).sort(), ['security.capability', 'system.posix_acl_access', 'trusted.overlay.opaque', 'user.note']);
    await assert.rejects(c.xattrSet(fid, 'btrfs.compression', Buffer.from('zstd')), { errno: Errno.EOPNOTSUPP });
  });
});
