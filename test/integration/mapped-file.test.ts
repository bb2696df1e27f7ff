import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/client/client.js';
import { AT_REMOVEDIR, LinuxOpenFlag as O, QidType, SetattrValid as V } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { hostXattr } from './host-xattr.js';
import { startFixture, type Fixture } from './server-fixture.js';
import { WireClient } from './wire-client.js';

// The mapped-file model through the wire, checked against the host's view of the same objects:
// QEMU's text files in .virtfs_metadata. (The kernel suite runs it again through the 9p client,
// with the server as an ordinary user, and against QEMU's own server.)

let fx: Fixture;
let c: Client;
let root: number;
const p = (...parts: string[]) => join(fx.root, ...parts);
const meta = (...parts: string[]) => {
  const name = parts.pop()!;
  return readFileSync(p(...parts, '.virtfs_metadata', name), 'utf8');
};

before(async () => {
  fx = await startFixture({ security: { model: 'mapped-file', fmode: 0o640, dmode: 0o750 } });
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

async function attrOf(...path: string[]) {
  return c.getattr((await c.walk(root, path)).fid);
}

describe('mapped-file', () => {
  test('a created file is the server’s with --fmode; its metadata is a 0600 text file in a 0700 .virtfs_metadata', async () => {
    const d = await dir();
    await c.create(d, 'f', O.RDWR, 0o4755, 1001);
    const host = lstatSync(p('f'));
    assert.equal(host.uid, process.getuid!());
    assert.equal(host.mode, 0o100640);
    assert.equal(meta('f'), `virtfs.uid=1000\nvirtfs.gid=1001\nvirtfs.mode=${0o104755}\n`);
    assert.equal(lstatSync(p('.virtfs_metadata')).mode, 0o040700);
    assert.equal(lstatSync(p('.virtfs_metadata', 'f')).mode, 0o100600);
    const a = await c.getattr(d);
    assert.deepEqual([a.uid, a.gid, a.mode], [1000, 1001, 0o104755]);
  });

  test('directories get --dmode; their metadata is in their parent’s .virtfs_metadata', async () => {
    const d = await dir();
    await c.mkdir(d, 'sub', 0o1777, 5);
    assert.equal(lstatSync(p('sub')).mode, 0o040750);
    assert.equal(meta('sub'), `virtfs.uid=1000\nvirtfs.gid=5\nvirtfs.mode=${0o041777}\n`);
    const { fid } = await c.walk(d, ['sub']);
    await c.create(fid, 'inner', O.RDWR, 0o600, 6);
    assert.equal(meta('sub', 'inner'), `virtfs.uid=1000\nvirtfs.gid=6\nvirtfs.mode=${0o100600}\n`);
    const a = await c.getattr((await c.walk(d, ['sub'])).fid);
    assert.deepEqual([a.uid, a.gid, a.mode, a.qid.type], [1000, 5, 0o041777, QidType.DIR]);
    assert.equal((await attrOf('sub', 'inner')).gid, 6);
    // the hidden metadata directory is no subdirectory of the guest's (QEMU counts it)
    assert.equal(lstatSync(p('sub')).nlink, 3);
    assert.equal(a.nlink, 2n);
  });

  test('symlinks, devices and fifos are regular host files; every mknod records rdev, as QEMU does', async () => {
    const d = await dir();
    assert.equal((await c.symlink(d, 'ln', '../../etc/passwd', 7)).type, QidType.SYMLINK);
    assert.equal(readFileSync(p('ln'), 'utf8'), '../../etc/passwd');
    assert.equal(meta('ln'), `virtfs.uid=1000\nvirtfs.gid=7\nvirtfs.mode=${0o120777}\n`);
    assert.equal((await c.readlink((await c.walk(root, ['ln'])).fid)).toString(), '../../etc/passwd');
    await c.mknod(d, 'null', 0o020666, 1, 3, 0);
    await c.mknod(d, 'fifo', 0o010600, 0, 0, 0);
    assert.equal(lstatSync(p('null')).mode, 0o100640);
    assert.equal(meta('null'), `virtfs.uid=1000\nvirtfs.gid=0\nvirtfs.mode=${0o020666}\nvirtfs.rdev=259\n`);
    assert.equal(meta('fifo'), `virtfs.uid=1000\nvirtfs.gid=0\nvirtfs.mode=${0o010600}\nvirtfs.rdev=0\n`);
    const n = await attrOf('null');
    assert.deepEqual([n.mode, n.rdev], [0o020666, 0x103n]);
  });

  test('chmod and chown rewrite only the fields they change; the host file stays as made', async () => {
    const d = await dir();
    await c.create(d, 'ch', O.RDWR, 0o600, 0);
    const { fid } = await c.walk(root, ['ch']);
    await c.setattr(fid, { valid: V.MODE, mode: 0o2711 });
    await c.setattr(fid, { valid: V.UID | V.GID, uid: 4242, gid: 4343 });
    await c.setattr(fid, { valid: V.GID, gid: 77 });
    assert.equal(meta('ch'), `virtfs.uid=4242\nvirtfs.gid=77\nvirtfs.mode=${0o102711}\n`);
    const a = await c.getattr(fid);
    assert.deepEqual([a.mode, a.uid, a.gid], [0o102711, 4242, 77]);
    assert.equal(lstatSync(p('ch')).mode, 0o100640);
  });

  test('chmod and chown change the host object’s ctime, as they would the guest’s', async () => {
    const d = await dir();
    await c.create(d, 'ct', O.RDWR, 0o600, 0);
    const { fid } = await c.walk(root, ['ct']);
    const before = lstatSync(p('ct'), { bigint: true }).ctimeNs;
    await new Promise((r) => setTimeout(r, 20));
    await c.setattr(fid, { valid: V.MODE, mode: 0o644 });
    const afterChmod = lstatSync(p('ct'), { bigint: true }).ctimeNs;
    assert.ok(afterChmod > before);
    await new Promise((r) => setTimeout(r, 20));
    await c.setattr(fid, { valid: V.UID, uid: 5 });
    assert.ok(lstatSync(p('ct'), { bigint: true }).ctimeNs > afterChmod);
  });

  test('ids past 2^31 are written as QEMU’s int prints them, and read back whole', async () => {
    const d = await dir();
    await c.create(d, 'big', O.RDWR, 0o600, 0);
    const { fid } = await c.walk(root, ['big']);
    await c.setattr(fid, { valid: V.UID, uid: 0xfffffffe });
    assert.match(meta('big'), /^virtfs\.uid=-2$/m);
    assert.equal((await c.getattr(fid)).uid, 0xfffffffe);
  });

  test('the export root’s metadata is .virtfs_metadata_root in the root', async () => {
    const r = await dir();
    await c.setattr(r, { valid: V.MODE, mode: 0o1777 });
    assert.equal(readFileSync(p('.virtfs_metadata_root'), 'utf8'), `virtfs.mode=${0o041777}\n`);
    assert.equal(lstatSync(p('.virtfs_metadata_root')).mode, 0o100600);
    assert.equal((await c.getattr(r)).mode, 0o041777);
    assert.equal((await c.getattr((await c.walk(root, ['sub', '..'])).fid)).mode, 0o041777);
  });

  test('both metadata names are hidden from readdir, in the root and below', async () => {
    for (const path of [[], ['sub']]) {
      const { fid } = await c.walk(root, path);
      await c.open(fid);
      const names = (await c.readdir(fid)).map((e) => e.name.toString());
      assert.ok(!names.includes('.virtfs_metadata') && !names.includes('.virtfs_metadata_root'), names.join(' '));
      assert.ok(names.includes('.'));
    }
  });

  test('both metadata names are refused (EINVAL) wherever a guest names something (CVE-2017-7493)', async () => {
    const d = await dir();
    const { fid: f } = await c.walk(root, ['f']);
    for (const name of ['.virtfs_metadata', '.virtfs_metadata_root']) {
      await assert.rejects(c.walk(root, [name]), { errno: Errno.EINVAL });
      await assert.rejects(c.walk(root, ['sub', name]), { errno: Errno.EINVAL });
      await assert.rejects(c.create(await dir(), name, O.RDWR, 0o600), { errno: Errno.EINVAL });
      await assert.rejects(c.mkdir(d, name, 0o700), { errno: Errno.EINVAL });
      await assert.rejects(c.mknod(d, name, 0o010600), { errno: Errno.EINVAL });
      await assert.rejects(c.symlink(d, name, 'x'), { errno: Errno.EINVAL });
      await assert.rejects(c.link(d, f, name), { errno: Errno.EINVAL });
      await assert.rejects(c.renameat(d, 'f', d, name), { errno: Errno.EINVAL });
      await assert.rejects(c.renameat(d, name, d, 'stolen'), { errno: Errno.EINVAL });
      await assert.rejects(c.unlinkat(d, name, AT_REMOVEDIR), { errno: Errno.EINVAL });
    }
    assert.equal(lstatSync(p('.virtfs_metadata')).isDirectory(), true);
    assert.equal(existsSync(p('stolen')), false);
  });

  test('link shares the metadata file: a chmod through one name shows through the other', async () => {
    const d = await dir();
    await c.create(d, 'orig', O.RDWR, 0o644, 3);
    await c.link((await c.walk(root, ['sub'])).fid, (await c.walk(root, ['orig'])).fid, 'linked');
    assert.equal(lstatSync(p('sub', '.virtfs_metadata', 'linked')).ino, lstatSync(p('.virtfs_metadata', 'orig')).ino);
    await c.setattr((await c.walk(root, ['orig'])).fid, { valid: V.MODE, mode: 0o600 });
    assert.equal((await attrOf('sub', 'linked')).mode, 0o100600);
  });

  test('renameat moves the metadata into the new directory’s .virtfs_metadata (making it), and live fids follow', async () => {
    const d = await dir();
    await c.mkdir(d, 'dst', 0o755, 0);
    await c.create(await dir(), 'mv', O.RDWR, 0o640, 9);
    const held = (await c.walk(root, ['mv'])).fid;
    const dst = (await c.walk(root, ['dst'])).fid;
    assert.equal(existsSync(p('dst', '.virtfs_metadata')), false);
    await c.renameat(d, 'mv', dst, 'moved');
    assert.equal(existsSync(p('.virtfs_metadata', 'mv')), false);
    assert.equal(meta('dst', 'moved'), `virtfs.uid=1000\nvirtfs.gid=9\nvirtfs.mode=${0o100640}\n`);
    await c.setattr(held, { valid: V.MODE, mode: 0o604 });
    assert.match(meta('dst', 'moved'), /virtfs\.mode=33156\n/);
    assert.equal((await c.getattr(held)).mode, 0o100604);
  });

  test('a rename over an entry replaces its metadata, or drops it when the renamed object had none', async () => {
    const d = await dir();
    await c.create(await dir(), 'over-src', O.RDWR, 0o600, 11);
    await c.create(await dir(), 'over-dst', O.RDWR, 0o600, 12);
    await c.renameat(d, 'over-src', d, 'over-dst');
    assert.match(meta('over-dst'), /virtfs\.gid=11\n/);
    writeFileSync(p('hostmade'), 'x', { mode: 0o644 });
    await c.renameat(d, 'hostmade', d, 'over-dst');
    assert.equal(existsSync(p('.virtfs_metadata', 'over-dst')), false);
    assert.equal((await attrOf('over-dst')).mode, 0o100644);
  });

  test('the legacy Trename keeps the metadata in step too', async () => {
    const d = await dir();
    await c.create(d, 'legacy', O.RDWR, 0o600, 13);
    const w = await WireClient.attach(fx.port, 1000);
    await w.walk(0, 1, 'legacy');
    await w.walk(0, 2, 'sub');
    await w.rpc('Trename', { fid: 1, dfid: 2, name: Buffer.from('legacy2') });
    w.close();
    assert.match(meta('sub', 'legacy2'), /virtfs\.gid=13\n/);
    assert.equal(existsSync(p('.virtfs_metadata', 'legacy')), false);
  });

  test('unlink removes the metadata file; rmdir removes the directory’s own .virtfs_metadata first', async () => {
    const d = await dir();
    await c.mkdir(d, 'gone', 0o755, 0);
    await c.create((await c.walk(root, ['gone'])).fid, 'child', O.RDWR, 0o600, 0);
    await assert.rejects(c.unlinkat(d, 'gone', AT_REMOVEDIR), { errno: Errno.ENOTEMPTY });
    assert.ok(existsSync(p('.virtfs_metadata', 'gone')));
    await c.unlinkat((await c.walk(root, ['gone'])).fid, 'child');
    assert.equal(existsSync(p('gone', '.virtfs_metadata', 'child')), false);
    await c.unlinkat(d, 'gone', AT_REMOVEDIR);
    assert.equal(existsSync(p('gone')), false);
    assert.equal(existsSync(p('.virtfs_metadata', 'gone')), false);
  });

  test('a file unlinked while open keeps the guest’s metadata (QEMU answers EOPNOTSUPP)', async () => {
    const d = await dir();
    await c.create(await dir(), 'tmp', O.RDWR, 0o640, 21);
    const { fid } = await c.walk(root, ['tmp']);
    await c.open(fid, O.RDWR);
    await c.unlinkat(d, 'tmp');
    assert.equal(existsSync(p('.virtfs_metadata', 'tmp')), false);
    let a = await c.getattr(fid);
    assert.deepEqual([a.mode, a.gid], [0o100640, 21]);
    await c.setattr(fid, { valid: V.MODE, mode: 0o600 });
    a = await c.getattr(fid);
    assert.equal(a.mode, 0o100600);
  });

  test('where there is no metadata the host’s stat shows through', async () => {
    writeFileSync(p('plain'), 'x', { mode: 0o604 });
    mkdirSync(p('plaindir'), { mode: 0o711 });
    const a = await attrOf('plain');
    assert.deepEqual([a.mode, a.uid], [0o100604, process.getuid!()]);
    assert.equal((await attrOf('plaindir')).mode, 0o040711);
  });

  test('a host process renaming behind the server’s back only loses that node’s metadata', async () => {
    const d = await dir();
    await c.create(d, 'behind', O.RDWR, 0o640, 31);
    const { fid } = await c.walk(root, ['behind']);
    renameSync(p('behind'), p('behind2'));
    assert.equal((await c.getattr(fid)).mode, 0o100640); // the host's: its metadata is still at the old name
    assert.equal((await attrOf('behind2')).mode, 0o100640);
  });

  test('metadata cannot turn a host directory into anything else', async () => {
    mkdirSync(p('notalink'));
    writeFileSync(p('.virtfs_metadata', 'notalink'), `virtfs.mode=${0o120777}\n`);
    const { fid, qids } = await c.walk(root, ['notalink']);
    assert.equal(qids[0]!.type, QidType.DIR);
    assert.equal((await c.getattr(fid)).mode, 0o040777);
  });

  test('a metadata file that is a host symlink is not followed', async () => {
    writeFileSync(p('victim'), `virtfs.uid=0\nvirtfs.mode=${0o104777}\n`);
    writeFileSync(p('sym-meta'), 'x', { mode: 0o644 });
    symlinkSync('../victim', p('.virtfs_metadata', 'sym-meta'));
    assert.equal((await attrOf('sym-meta')).mode, 0o100644);
  });

  test('user.* and ACLs are the host file’s, as in QEMU’s mapped-file; trusted.* is kept under user.virtfs.', async () => {
    const { fid } = await c.walk(root, ['f']);
    await c.xattrSet(fid, 'user.note', Buffer.from('hi'));
    // u::rw-, u:1234:r--, g::r--, m::r--, o::--- (a minimal one would become mode bits on the host)
    const acl = Buffer.from('02000000' + '01000600ffffffff' + '02000400d2040000' + '04000400ffffffff' + '10000400ffffffff' + '20000000ffffffff', 'hex');
    await c.xattrSet(fid, 'system.posix_acl_access', acl);
    await c.xattrSet(fid, 'trusted.overlay.opaque', Buffer.from('y'));
    assert.deepEqual((await c.xattrList(fid)).sort(), ['system.posix_acl_access', 'trusted.overlay.opaque', 'user.note']);
    assert.deepEqual(hostXattr(p('f'), 'system.posix_acl_access'), acl);
    assert.equal(hostXattr(p('f'), 'user.virtfs.system.posix_acl_access'), null);
    assert.deepEqual(hostXattr(p('f'), 'user.virtfs.trusted.overlay.opaque'), Buffer.from('y'));
    assert.deepEqual(await c.xattrGet(fid, 'system.posix_acl_access'), acl);
    await assert.rejects(c.xattrSet(fid, 'user.virtfs.uid', Buffer.from('0')), { errno: Errno.EACCES });
  });
});
