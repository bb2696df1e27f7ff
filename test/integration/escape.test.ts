import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LinuxOpenFlag as O, QidType, SetattrValid as V } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { startFixture, type Fixture } from './server-fixture.js';
import { b, WireClient } from './wire-client.js';
import { rejectsWith } from './assertions.js';

let fx: Fixture;
let c: WireClient;
/** A directory outside the export holding a file the guest must never reach. */
let outside: string;
let secret: string;
let nextFid = 100;
const fid = () => nextFid++;
const none = { mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };

before(async () => {
  fx = await startFixture();
  outside = mkdtempSync(join(tmpdir(), 'virtfs-outside-'));
  secret = join(outside, 'secret');
  writeFileSync(secret, 'host secret');
  symlinkSync('/', join(fx.root, 'to-root'));
  symlinkSync(outside, join(fx.root, 'to-outside'));
  symlinkSync(secret, join(fx.root, 'to-secret'));
  symlinkSync('../../../../../../../../etc', join(fx.root, 'dotdots'));
  c = await WireClient.attach(fx.port);
});
after(async () => {
  c.close();
  await fx.close();
  rmSync(outside, { recursive: true, force: true });
});

describe('symlinks are never followed on the host', () => {
  test('walking through a symlink to / stops at the link (ENOTDIR past it)', async () => {
    const f = fid();
    const r = await c.rpc('Twalk', { fid: 0, newfid: f, wnames: [b('to-root'), b('etc'), b('passwd')] });
    assert.equal(r.qids.length, 1);
    assert.equal(r.qids[0]!.type, QidType.SYMLINK);
    await rejectsWith(c.rpc('Tgetattr', { fid: f, requestMask: 0x7ffn }), Errno.EBADF);
  });

  test('a symlink reached by a walk is the link itself', async () => {
    const f = fid();
    await c.walk(0, f, 'to-secret');
    const a = await c.rpc('Tgetattr', { fid: f, requestMask: 0x7ffn });
    assert.equal(a.mode & 0o170000, 0o120000);
    assert.notEqual(a.qid.path, BigInt(statSync(secret).ino));
  });

  test('opening a symlink is refused rather than opening its target', async () => {
    const f = fid();
    await c.walk(0, f, 'to-secret');
    await rejectsWith(c.rpc('Tlopen', { fid: f, flags: O.RDONLY }), Errno.ENXIO);
  });

  test('setattr on a symlink never changes the file it points to', async () => {
    const before = statSync(secret);
    const f = fid();
    await c.walk(0, f, 'to-secret');
    await c.rpc('Tsetattr', { fid: f, ...none, valid: V.MTIME | V.MTIME_SET, mtimeSec: 12345n }).catch(() => {});
    await c.rpc('Tsetattr', { fid: f, ...none, valid: V.SIZE, size: 0n }).catch(() => {});
    await c.rpc('Tsetattr', { fid: f, ...none, valid: V.MODE, mode: 0o777 }).catch(() => {});
    const after = statSync(secret);
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(after.size, before.size);
    assert.equal(after.mode, before.mode);
    assert.equal(readFileSync(secret, 'utf8'), 'host secret');
  });

  test('xattrs set on a symlink never reach the file it points to', async () => {
    const f = fid();
    await c.walk(0, f, 'to-secret');
    await c.rpc('Txattrcreate', { fid: f, name: b('user.evil'), attrSize: 1n, flags: 0 });
    await c.rpc('Twrite', { fid: f, offset: 0n, data: b('x') });
    await c.rpc('Tclunk', { fid: f }).catch(() => {});
    const { execFileSync } = await import('node:child_process');
    const list = execFileSync('getfattr', ['-d', secret], { encoding: 'utf8' });
    assert.doesNotMatch(list, /user\.evil/);
  });

  test('creating through a symlinked directory is refused', async () => {
    const f = fid();
    await c.walk(0, f, 'to-outside');
    await rejectsWith(c.rpc('Tlcreate', { fid: f, name: b('planted'), flags: O.RDWR, mode: 0o644, gid: 0 }), Errno.ENOTDIR);
    await rejectsWith(c.rpc('Tmkdir', { dfid: f, name: b('planted-dir'), mode: 0o755, gid: 0 }), Errno.ENOTDIR);
    assert.equal(existsSync(join(outside, 'planted')), false);
    assert.equal(existsSync(join(outside, 'planted-dir')), false);
  });

  test('a symlink swapped in for a directory mid-walk is never followed', async () => {
    // A host process flips "flip" between a real directory and a symlink to the outside
    // directory while the client walks flip/secret. Every walk must reach the export's own
    // file or stop; never the host's.
    mkdirSync(join(fx.root, 'flip-dir'));
    writeFileSync(join(fx.root, 'flip-dir', 'secret'), 'inside');
    symlinkSync(outside, join(fx.root, 'flip-link'));
    const inside = BigInt(statSync(join(fx.root, 'flip-dir', 'secret')).ino);
    const forbidden = BigInt(statSync(secret).ino);
    let stop = false;
    const flipper = (async () => {
      let isDir = true;
      while (!stop) {
        renameSync(join(fx.root, isDir ? 'flip-dir' : 'flip-link'), join(fx.root, 'flip'));
        await new Promise((r) => setImmediate(r));
        renameSync(join(fx.root, 'flip'), join(fx.root, isDir ? 'flip-dir' : 'flip-link'));
        isDir = !isDir;
      }
    })();
    const reached: bigint[] = [];
    for (let i = 0; i < 300; i++) {
      const f = fid();
      try {
        const r = await c.rpc('Twalk', { fid: 0, newfid: f, wnames: [b('flip'), b('secret')] });
        if (r.qids.length === 2) {
          reached.push(r.qids[1]!.path);
          await c.rpc('Tlopen', { fid: f, flags: O.RDONLY });
          const data = await c.rpc('Tread', { fid: f, offset: 0n, count: 100 });
          assert.equal(data.data.toString(), 'inside');
        }
        await c.rpc('Tclunk', { fid: f }).catch(() => {});
      } catch (e) {
        if ((e as { errno?: number }).errno === undefined) throw e;
      }
    }
    stop = true;
    await flipper;
    assert.ok(!reached.includes(forbidden), 'a walk reached a file outside the export');
    assert.ok(reached.every((p) => p === inside));
  });
});

describe('".." and "/" never leave the export', () => {
  test('".." from the root is the root', async () => {
    const root = await c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn });
    const r = await c.rpc('Twalk', { fid: 0, newfid: fid(), wnames: [b('..'), b('..'), b('..')] });
    assert.equal(r.qids.length, 3);
    for (const q of r.qids) assert.equal(q.path, root.qid.path);
  });

  test('".." from a subdirectory goes to its parent, and no further than the root', async () => {
    mkdirSync(join(fx.root, 'sub', 'deeper'), { recursive: true });
    const root = await c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn });
    const r = await c.rpc('Twalk', { fid: 0, newfid: fid(), wnames: ['sub', 'deeper', '..', '..', '..', '..'].map(b) });
    assert.equal(r.qids[2]!.path, BigInt(statSync(join(fx.root, 'sub')).ino));
    assert.equal(r.qids[5]!.path, root.qid.path);
  });

  test('names containing "/" are refused by every operation', async () => {
    const evil = b('../escaped');
    const d = fid();
    await c.walk(0, d, 'sub');
    await rejectsWith(c.rpc('Twalk', { fid: 0, newfid: fid(), wnames: [b('sub/deeper')] }), Errno.ENOENT);
    await rejectsWith(c.rpc('Tlcreate', { fid: d, name: evil, flags: O.RDWR, mode: 0o644, gid: 0 }), Errno.ENOENT);
    await rejectsWith(c.rpc('Tmkdir', { dfid: d, name: evil, mode: 0o755, gid: 0 }), Errno.ENOENT);
    await rejectsWith(c.rpc('Tsymlink', { fid: d, name: evil, target: b('x'), gid: 0 }), Errno.ENOENT);
    await rejectsWith(c.rpc('Tmknod', { dfid: d, name: evil, mode: 0o010644, major: 0, minor: 0, gid: 0 }), Errno.ENOENT);
    const f = fid();
    await c.walk(0, f, 'to-secret');
    await rejectsWith(c.rpc('Tlink', { dfid: d, fid: f, name: evil }), Errno.ENOENT);
    writeFileSync(join(fx.root, 'sub', 'movable'), '');
    await rejectsWith(c.rpc('Trenameat', { oldDirFid: d, oldName: b('movable'), newDirFid: d, newName: evil }), Errno.ENOENT);
    await rejectsWith(c.rpc('Trename', { fid: f, dfid: d, name: b('../../x') }), Errno.ENOENT);
    await rejectsWith(c.rpc('Tunlinkat', { dfid: d, name: b('../to-secret'), flags: 0 }), Errno.ENOENT);
    assert.equal(existsSync(join(dirname(fx.root), 'escaped')), false);
    assert.equal(existsSync(join(fx.root, 'escaped')), false);
  });

  test('"." and ".." cannot be created, linked or renamed over', async () => {
    const d = fid();
    await c.walk(0, d, 'sub');
    for (const name of ['.', '..']) {
      await rejectsWith(c.rpc('Tlcreate', { fid: d, name: b(name), flags: O.RDWR, mode: 0o644, gid: 0 }), Errno.EEXIST);
      await rejectsWith(c.rpc('Tmkdir', { dfid: d, name: b(name), mode: 0o755, gid: 0 }), Errno.EEXIST);
      await rejectsWith(c.rpc('Tsymlink', { fid: d, name: b(name), target: b('/'), gid: 0 }), Errno.EEXIST);
      await rejectsWith(c.rpc('Trenameat', { oldDirFid: d, oldName: b('movable'), newDirFid: d, newName: b(name) }), Errno.EEXIST);
    }
    await rejectsWith(c.rpc('Trenameat', { oldDirFid: 0, oldName: b('..'), newDirFid: 0, newName: b('x') }), Errno.ENOTEMPTY);
  });

  test('empty names are refused', async () => {
    await rejectsWith(c.rpc('Twalk', { fid: 0, newfid: fid(), wnames: [b('')] }), Errno.ENOENT);
    await rejectsWith(c.rpc('Tmkdir', { dfid: 0, name: b(''), mode: 0o755, gid: 0 }), Errno.ENOENT);
  });

  test('a relative symlink full of ".." is stored, not resolved', async () => {
    const f = fid();
    const r = await c.rpc('Twalk', { fid: 0, newfid: f, wnames: [b('dotdots'), b('passwd')] });
    assert.equal(r.qids.length, 1);
    assert.equal(r.qids[0]!.type, QidType.SYMLINK);
  });

  test('hard links can only be made to objects inside the export', async () => {
    // The only way to name an object is a fid walked inside the export; a link's new name
    // is one component in a directory of the export. So the link stays inside, and the
    // target of a symlink is linked as the symlink, not the host file it names.
    const f = fid();
    await c.walk(0, f, 'to-secret');
    await c.rpc('Tlink', { dfid: 0, fid: f, name: b('linked-symlink') });
    const { lstatSync } = await import('node:fs');
    assert.equal(lstatSync(join(fx.root, 'linked-symlink')).isSymbolicLink(), true);
    assert.equal(statSync(secret).nlink, 1);
  });
});

describe('a walk goes by what a name holds now, not by the objects fids already hold', () => {
  // Walks pass steps that live fids hold to the addon to check rather than reopen: the check
  // must see a host process's swap of the name.
  test('a held directory replaced on the host by a symlink to the outside is not walked through', async () => {
    mkdirSync(join(fx.root, 'held-dir'));
    writeFileSync(join(fx.root, 'held-dir', 'secret'), 'inside');
    const held = fid();
    await c.rpc('Twalk', { fid: 0, newfid: held, wnames: [b('held-dir')] });
    const f = fid();
    await c.rpc('Twalk', { fid: 0, newfid: f, wnames: [b('held-dir'), b('secret')] });
    await c.rpc('Tclunk', { fid: f });
    renameSync(join(fx.root, 'held-dir'), join(fx.root, 'held-dir.old'));
    symlinkSync(outside, join(fx.root, 'held-dir'));
    const r = await c.rpc('Twalk', { fid: 0, newfid: fid(), wnames: [b('held-dir'), b('secret')] });
    assert.equal(r.qids.length, 1, 'the walk stopped at the symlink');
    assert.equal(r.qids[0]!.type, QidType.SYMLINK);
    await c.rpc('Tclunk', { fid: held });
  });

  test('a held directory replaced on the host by another is walked as the new one', async () => {
    mkdirSync(join(fx.root, 'swap'));
    writeFileSync(join(fx.root, 'swap', 'x'), 'old');
    const held = fid();
    await c.rpc('Twalk', { fid: 0, newfid: held, wnames: [b('swap'), b('x')] });
    renameSync(join(fx.root, 'swap'), join(fx.root, 'swap.old'));
    mkdirSync(join(fx.root, 'swap'));
    writeFileSync(join(fx.root, 'swap', 'x'), 'new');
    const f = fid();
    const r = await c.rpc('Twalk', { fid: 0, newfid: f, wnames: [b('swap'), b('x')] });
    assert.equal(r.qids[1]!.path, BigInt(statSync(join(fx.root, 'swap', 'x')).ino));
    await c.rpc('Tlopen', { fid: f, flags: O.RDONLY });
    assert.equal((await c.rpc('Tread', { fid: f, offset: 0n, count: 10 })).data.toString(), 'new');
    await c.rpc('Tclunk', { fid: f });
    await c.rpc('Tclunk', { fid: held });
  });
});
