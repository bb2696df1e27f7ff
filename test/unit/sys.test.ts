import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as sys from '../../src/backend/local/sys.js';
import { O, StatIndex as S, type RawStat } from '../../src/backend/local/sys.js';
import { parseDirents as parseWireDirents, type Dirent } from '../../src/protocol/dirent.js';
import { P9Error } from '../../src/protocol/errno.js';

const E = os.constants.errno;
const b = (s: string): Buffer => Buffer.from(s);
const isRoot = process.getuid?.() === 0;

/** A temp dir with an O_PATH fd on it; every fd pushed on `fds` is closed after the test. */
async function scratch(t: TestContext): Promise<{ dir: string; root: number; fds: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtfs-sys-'));
  const [root] = await sys.openRoot(b(dir));
  const fds = [root];
  t.after(() => {
    for (const fd of fds) {
      try {
        sys.closeSync(fd);
      } catch {
        /* already closed by the test */
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, root, fds };
}

function fileType(st: RawStat): number {
  return Number(st[S.mode]) & O.S_IFMT;
}

// ---------- opening and walking ----------

test('openPath returns an O_PATH fd and the statx of the named file', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'hello');
  const [fd, st] = await sys.openPath(root, b('f'));
  fds.push(fd);
  const ref = fs.lstatSync(path.join(dir, 'f'), { bigint: true });
  assert.ok(st instanceof BigUint64Array);
  assert.equal(st.length, 23);
  assert.equal(st[S.ino], ref.ino);
  assert.equal(fileType(st), O.S_IFREG);
  assert.equal(st[S.size], 5n);
  assert.ok(fs.fstatSync(fd) !== undefined, 'fd is live');
});

test('openPath on a symlink returns the link itself, not its target', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'target'), 'x');
  fs.symlinkSync('target', path.join(dir, 'link'));
  const [fd, st] = await sys.openPath(root, b('link'));
  fds.push(fd);
  assert.equal(fileType(st), O.S_IFLNK);
  assert.equal(st[S.ino], fs.lstatSync(path.join(dir, 'link'), { bigint: true }).ino);
  assert.deepEqual(await sys.readlink(fd), b('target'));
});

test('openPath on a dangling symlink still opens the link', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.symlinkSync('nowhere', path.join(dir, 'dangling'));
  const [fd, st] = await sys.openPath(root, b('dangling'));
  fds.push(fd);
  assert.equal(fileType(st), O.S_IFLNK);
});

test('errors carry the positive errno, its code and a "syscall: message" message', async (t) => {
  const { root } = await scratch(t);
  const err = await sys.openPath(root, b('missing')).then(
    () => assert.fail('should reject'),
    (e: unknown) => e,
  );
  assert.ok(sys.isSysError(err));
  assert.equal(err.errno, E.ENOENT);
  assert.equal(err.code, 'ENOENT');
  assert.equal(err.syscall, 'openat');
  assert.equal(err.message, 'openat: No such file or directory');
});

test('failures are answers, not faults: no stack is captured, and the stack limit is left as it was', async (t) => {
  const { root } = await scratch(t);
  sys.markLocal(root); // on the calling thread, where a JS stack is there to capture
  const limit = Error.stackTraceLimit;
  const err = await sys.openPath(root, b('missing')).then(
    () => assert.fail('should reject'),
    (e: Error) => e,
  );
  assert.equal(err.stack, 'Error: openat: No such file or directory');
  assert.equal(Error.stackTraceLimit, limit);
  const p9 = new P9Error(E.ENOENT, 'no such entry');
  assert.equal(p9.stack, 'P9Error: no such entry');
  assert.ok(p9 instanceof Error);
  assert.equal(Error.stackTraceLimit, limit);
  assert.match(new Error('a fault').stack ?? '', /\n +at /, 'other errors keep their stacks');
});

test('walk returns one fd and stat per name', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a/b/c'), '');
  const r = await sys.walk(root, [b('a'), b('b'), b('c')]);
  fds.push(...r.fds);
  assert.equal(r.errno, 0);
  assert.equal(r.fds.length, 3);
  assert.equal(new Set(r.fds).size, 3);
  assert.deepEqual(
    r.stats.map((s) => s[S.ino]),
    ['a', 'a/b', 'a/b/c'].map((p) => fs.statSync(path.join(dir, p), { bigint: true }).ino),
  );
  assert.equal(fileType(r.stats[2]!), O.S_IFREG);
});

// QEMU's mapped-file format: D/.virtfs_metadata/NAME describes D/NAME; the root has its own file.
const FILES = { dir: b('.virtfs_metadata'), root: b('.virtfs_metadata_root') };

test('walk, openPath and fstat read mapped-file metadata by name, in the same hop', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'd', '.virtfs_metadata'), { recursive: true });
  fs.mkdirSync(path.join(dir, '.virtfs_metadata'));
  fs.writeFileSync(path.join(dir, 'd', 'f'), '');
  fs.writeFileSync(path.join(dir, '.virtfs_metadata', 'd'), 'virtfs.uid=7\nvirtfs.mode=16877\n');
  fs.writeFileSync(path.join(dir, 'd', '.virtfs_metadata', 'f'), 'virtfs.uid=-2\nvirtfs.gid=5\nvirtfs.mode=8630\nvirtfs.rdev=259\n');
  fs.writeFileSync(path.join(dir, '.virtfs_metadata_root'), 'virtfs.gid=9\n');
  const run = await sys.walk(root, [b('d'), b('f')], FILES);
  fds.push(...run.fds);
  // found: uid and mode, and (16) d holds a metadata directory of its own
  assert.deepEqual([...run.stats[0]!.subarray(S.metaFound, S.metaRdev + 1)], [21n, 7n, 0n, 16877n, 0n]);
  assert.deepEqual([...run.stats[1]!.subarray(S.metaFound, S.metaRdev + 1)], [15n, 0xfffffffen, 5n, 8630n, 259n]);
  const [fd, st] = await sys.openPath(run.fds[0]!, b('f'), FILES);
  fds.push(fd);
  assert.equal(st[S.metaGid], 5n);
  assert.equal((await sys.fstat(fd, FILES, { dir: run.fds[0]!, name: b('f') }))[S.metaFound], 15n);
  assert.equal((await sys.fstat(fd, FILES))[S.metaFound], 0n);
  assert.deepEqual([...(await sys.fstat(root, FILES, { dir: root, name: null })).subarray(S.metaFound, S.metaGid + 1)], [18n, 0n, 9n]);
});

test('mapped-file metadata is never read through a symlink or from anything but a regular file', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, '.virtfs_metadata'));
  fs.writeFileSync(path.join(dir, 'victim'), 'virtfs.uid=0\n');
  for (const n of ['a', 'b']) fs.writeFileSync(path.join(dir, n), '');
  fs.symlinkSync('../victim', path.join(dir, '.virtfs_metadata', 'a'));
  execFileSync('mkfifo', [path.join(dir, '.virtfs_metadata', 'b')]);
  for (const n of ['a', 'b']) {
    const [fd, st] = await sys.openPath(root, b(n), FILES);
    fds.push(fd);
    assert.equal(st[S.metaFound], 0n);
  }
});

test('walk of no names succeeds with nothing opened', async (t) => {
  const { root } = await scratch(t);
  assert.deepEqual(await sys.walk(root, []), { fds: [], stats: [], errno: 0 });
});

test('walk stops at the first missing name and reports its errno', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'a'));
  const r = await sys.walk(root, [b('a'), b('missing'), b('c')]);
  fds.push(...r.fds);
  assert.equal(r.errno, E.ENOENT);
  assert.equal(r.fds.length, 1);
  assert.equal(r.stats.length, 1);
  assert.equal(r.stats[0]![S.ino], fs.statSync(path.join(dir, 'a'), { bigint: true }).ino);
});

test('walk past a regular file fails with ENOTDIR', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const r = await sys.walk(root, [b('f'), b('x')]);
  fds.push(...r.fds);
  assert.equal(r.errno, E.ENOTDIR);
  assert.equal(r.fds.length, 1);
});

test('walk does not follow a symlink to a directory: going on from it is ENOTDIR', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'd'));
  fs.writeFileSync(path.join(dir, 'd/inner'), '');
  fs.symlinkSync('d', path.join(dir, 'link'));
  const r = await sys.walk(root, [b('link'), b('inner')]);
  fds.push(...r.fds);
  assert.equal(r.errno, E.ENOTDIR);
  assert.equal(fileType(r.stats[0]!), O.S_IFLNK);
});

test('walk opens ".." like any other name', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'a'));
  const r = await sys.walk(root, [b('a'), b('..')]);
  fds.push(...r.fds);
  assert.equal(r.errno, 0);
  assert.equal(r.stats[1]![S.ino], fs.statSync(dir, { bigint: true }).ino);
});

test('walk with a NUL in any name rejects with EINVAL and opens nothing', async (t) => {
  const { dir, root } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'a'));
  const before = sys.openFdCount();
  await assert.rejects(sys.walk(root, [b('a'), b('x\0y')]), { errno: E.EINVAL, code: 'EINVAL' });
  assert.equal(sys.openFdCount(), before);
});

test('openRoot follows symlinks and requires a directory', async (t) => {
  const { dir, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'real'));
  fs.symlinkSync('real', path.join(dir, 'alias'));
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd, st] = await sys.openRoot(b(path.join(dir, 'alias')));
  fds.push(fd);
  assert.equal(fileType(st), O.S_IFDIR);
  assert.equal(st[S.ino], fs.statSync(path.join(dir, 'real'), { bigint: true }).ino);
  await assert.rejects(sys.openRoot(b(path.join(dir, 'f'))), { code: 'ENOTDIR' });
});

// ---------- stat ----------

test('stat vectors keep their values whatever later calls return (they are views of shared slabs)', async (t) => {
  const { dir, root, fds } = await scratch(t);
  sys.markLocal(root);
  // Enough vectors to fill several slabs, from files told apart by size, kept while more come.
  const sizes = Array.from({ length: 150 }, (_, i) => i * 3 + 1);
  for (const [i, size] of sizes.entries()) fs.writeFileSync(path.join(dir, `f${i}`), Buffer.alloc(size));
  const stats: RawStat[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const [fd, st] = await sys.openPath(root, b(`f${i}`));
    fds.push(fd);
    stats.push(st, await sys.fstat(fd));
  }
  const walked = await sys.walk(root, [b('f0')]);
  fds.push(...walked.fds);
  for (let i = 0; i < sizes.length; i++) {
    assert.equal(stats[2 * i]![S.size], BigInt(sizes[i]!), `openPath of f${i}`);
    assert.equal(stats[2 * i + 1]![S.size], BigInt(sizes[i]!), `fstat of f${i}`);
    assert.equal(stats[2 * i]!.length, stats[2 * i + 1]!.length);
  }
  assert.equal(walked.stats[0]![S.size], 1n);
});

test('fstat fills every slot of the stat layout like lstat does', async (t) => {
  const { dir, root, fds } = await scratch(t);
  const p = path.join(dir, 'f');
  fs.writeFileSync(p, 'x'.repeat(10000));
  fs.utimesSync(p, new Date(1_000_000_123), new Date(2_000_000_456));
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  const st = await sys.fstat(fd);
  const ref = fs.lstatSync(p, { bigint: true });
  const ns = (sec: bigint, nsec: bigint): bigint => sec * 1_000_000_000n + nsec;
  assert.equal(st[S.dev], ref.dev);
  assert.equal(st[S.ino], ref.ino);
  assert.equal(st[S.mode], ref.mode);
  assert.equal(st[S.nlink], ref.nlink);
  assert.equal(st[S.uid], ref.uid);
  assert.equal(st[S.gid], ref.gid);
  assert.equal(st[S.rdev], ref.rdev);
  assert.equal(st[S.size], 10000n);
  assert.equal(st[S.blksize], ref.blksize);
  assert.equal(st[S.blocks], ref.blocks);
  assert.equal(ns(st[S.atimeSec]!, st[S.atimeNsec]!), ref.atimeNs);
  assert.equal(ns(st[S.mtimeSec]!, st[S.mtimeNsec]!), ref.mtimeNs);
  assert.equal(ns(st[S.ctimeSec]!, st[S.ctimeNsec]!), ref.ctimeNs);
  assert.equal(st[S.mtimeSec], 2_000_000n);
  assert.equal(st[S.mtimeNsec], 456_000_000n);
  if (st[S.btimeSec] !== 0n) assert.equal(ns(st[S.btimeSec]!, st[S.btimeNsec]!), ref.birthtimeNs);
});

test('fstat stores negative seconds as their two\'s-complement bits', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.utimens(fd, -5n, 0n, sys.UTIME_NOW, sys.UTIME_OMIT);
  const st = await sys.fstat(fd);
  assert.equal(st[S.atimeSec], 2n ** 64n - 5n);
  assert.equal(BigInt.asIntN(64, st[S.atimeSec]!), -5n);
});

test('fstat of a closed fd rejects with EBADF', async () => {
  const fd = fs.openSync(os.tmpdir(), 'r');
  fs.closeSync(fd);
  await assert.rejects(sys.fstat(fd), { errno: E.EBADF, code: 'EBADF' });
});

test('fstatNow answers at once on a local descriptor, throws its error there, and does nothing elsewhere', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'hello');
  const [away] = await sys.openPath(root, b('f'));
  fds.push(away);
  assert.equal(sys.fstatNow(away), undefined, 'not marked local: it would hop, so nothing is done');
  sys.markLocal(root);
  const [near] = await sys.openPath(root, b('f'));
  fds.push(near);
  const st = sys.fstatNow(near);
  assert.ok(st);
  assert.equal(st[S.size], 5n);
  assert.equal(st[S.ino], BigInt(fs.statSync(path.join(dir, 'f')).ino));
  const gone = fs.openSync(dir, 'r');
  sys.markLocal(gone);
  fs.closeSync(gone); // behind the addon's back: its mark stays, and the call meets EBADF
  assert.throws(() => sys.fstatNow(gone), { errno: E.EBADF, code: 'EBADF', syscall: 'statx' });
});

test('walkNow walks at once on a local descriptor, stops at a missing name as walk does, and does nothing elsewhere', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'd'));
  fs.writeFileSync(path.join(dir, 'd', 'f'), 'hello');
  const before = sys.openFdCount();
  assert.equal(sys.walkNow(root, [b('d'), b('f')]), undefined, 'not marked local: it would hop, so nothing is done');
  assert.equal(sys.openFdCount(), before);
  sys.markLocal(root);
  const r = sys.walkNow(root, [b('d'), b('f')]);
  assert.ok(r);
  fds.push(...r.fds);
  assert.equal(r.errno, 0);
  assert.equal(r.fds.length, 2);
  assert.equal(r.stats[1]![S.size], 5n);
  const missing = sys.walkNow(root, [b('d'), b('nothing'), b('f')]);
  assert.ok(missing);
  fds.push(...missing.fds);
  assert.equal(missing.errno, E.ENOENT);
  assert.equal(missing.fds.length, 1);
  assert.throws(() => sys.walkNow(root, [b('d'), Buffer.from('a\0b')]), { errno: E.EINVAL });
});

test('reopenNow and preadNow open and read at once what the page cache holds, and do nothing elsewhere', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'hello');
  const [away] = await sys.openPath(root, b('f'));
  fds.push(away);
  assert.equal(sys.reopenNow(away, O.O_RDONLY), undefined, 'not marked local: it would hop, so nothing is done');
  sys.markLocal(root);
  const [near] = await sys.openPath(root, b('f'));
  fds.push(near);
  const fd = sys.reopenNow(near, O.O_RDONLY);
  assert.ok(fd !== undefined && fd >= 0);
  fds.push(fd);
  const buf = Buffer.alloc(16);
  assert.equal(sys.preadNow(fd, buf, 2, 10, 0n), 5, 'a read that ends the file: what is left');
  assert.equal(buf.toString('latin1', 2, 7), 'hello');
  assert.equal(sys.preadNow(fd, buf, 0, 10, 100n), 0);
  assert.throws(() => sys.reopenNow(near, O.O_WRONLY | O.O_DIRECTORY), { errno: E.ENOTDIR });
});

// ---------- opening for I/O ----------

test('reopen turns an O_PATH fd into a readable fd, ignoring O_CREAT, O_EXCL and O_NOFOLLOW', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'content');
  const [pfd] = await sys.openPath(root, b('f'));
  fds.push(pfd);
  const fd = await sys.reopen(pfd, O.O_RDONLY | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW);
  fds.push(fd);
  const buf = Buffer.alloc(16);
  assert.equal(await sys.pread(fd, buf, 0, 16, 0n), 7);
  assert.equal(buf.subarray(0, 7).toString(), 'content');
});

test('reopen with O_TRUNC truncates the file', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'content');
  const [pfd] = await sys.openPath(root, b('f'));
  fds.push(pfd);
  fds.push(await sys.reopen(pfd, O.O_WRONLY | O.O_TRUNC));
  assert.equal(fs.statSync(path.join(dir, 'f')).size, 0);
});

test('reopened fds are close-on-exec', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [pfd] = await sys.openPath(root, b('f'));
  fds.push(pfd);
  const fd = await sys.reopen(pfd, O.O_RDONLY);
  fds.push(fd);
  const fdinfo = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const flags = parseInt(/flags:\s*([0-7]+)/.exec(fdinfo)![1]!, 8);
  assert.ok(flags & O.O_CLOEXEC);
});

test('openat creates a file with the given mode', async (t) => {
  const { dir, root, fds } = await scratch(t);
  const fd = await sys.openat(root, b('new'), O.O_RDWR | O.O_CREAT | O.O_EXCL, 0o600);
  fds.push(fd);
  const st = fs.statSync(path.join(dir, 'new'));
  assert.ok(st.isFile());
  assert.equal(st.mode & 0o777, 0o600);
});

test('openat refuses to follow a symlink', async (t) => {
  const { dir, root } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'target'), '');
  fs.symlinkSync('target', path.join(dir, 'link'));
  await assert.rejects(sys.openat(root, b('link'), O.O_RDONLY, 0), { code: 'ELOOP' });
});

test('openat with O_CREAT|O_EXCL on an existing name gives EEXIST', async (t) => {
  const { dir, root } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  await assert.rejects(sys.openat(root, b('f'), O.O_WRONLY | O.O_CREAT | O.O_EXCL, 0o644), { code: 'EEXIST' });
});

test('close releases the fd and a second close gives EBADF', async (t) => {
  const { root } = await scratch(t);
  const [fd] = await sys.openPath(root, b('.'));
  await sys.close(fd);
  await assert.rejects(sys.close(fd), { errno: E.EBADF, code: 'EBADF' });
});

test('closeSync closes at once and throws EBADF on a bad fd', async (t) => {
  const { root } = await scratch(t);
  const [fd] = await sys.openPath(root, b('.'));
  const before = sys.openFdCount();
  sys.closeSync(fd);
  assert.equal(sys.openFdCount(), before - 1);
  assert.throws(() => sys.closeSync(fd), { errno: E.EBADF, code: 'EBADF' });
});

// ---------- data ----------

test('pread fills the caller\'s buffer at the given offset', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '0123456789');
  const fd = await sys.openat(root, b('f'), O.O_RDONLY, 0);
  fds.push(fd);
  const buf = Buffer.alloc(10, '.');
  assert.equal(await sys.pread(fd, buf, 2, 4, 3n), 4);
  assert.equal(buf.toString(), '..3456....');
});

test('pread into a view of a larger buffer writes through to it', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'abc');
  const fd = await sys.openat(root, b('f'), O.O_RDONLY, 0);
  fds.push(fd);
  const backing = new Uint8Array(8);
  const view = backing.subarray(4);
  assert.equal(await sys.pread(fd, view, 1, 3, 0n), 3);
  assert.deepEqual([...backing], [0, 0, 0, 0, 0, 97, 98, 99]);
});

test('pread past end of file returns 0', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'abc');
  const fd = await sys.openat(root, b('f'), O.O_RDONLY, 0);
  fds.push(fd);
  assert.equal(await sys.pread(fd, Buffer.alloc(4), 0, 4, 100n), 0);
});

test('pwrite writes the given window of the caller\'s buffer at the given position', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '..........');
  const fd = await sys.openat(root, b('f'), O.O_WRONLY, 0);
  fds.push(fd);
  assert.equal(await sys.pwrite(fd, b('xxABCxx'), 2, 3, 5n), 3);
  assert.equal(fs.readFileSync(path.join(dir, 'f'), 'utf8'), '.....ABC..');
});

test('pread and pwrite throw RangeError for a window outside the buffer', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const fd = await sys.openat(root, b('f'), O.O_RDWR, 0);
  fds.push(fd);
  const buf = Buffer.alloc(8);
  assert.throws(() => sys.pread(fd, buf, 4, 5, 0n), RangeError);
  assert.throws(() => sys.pwrite(fd, buf, -1, 2, 0n), RangeError);
  assert.throws(() => sys.pwrite(fd, buf, 0.5, 2, 0n), RangeError);
});

test('pwrite and pread at a position beyond 2^32 keep all 64 bits', async (t) => {
  const { root, fds } = await scratch(t);
  const fd = await sys.openat(root, b('sparse'), O.O_RDWR | O.O_CREAT, 0o644);
  fds.push(fd);
  const pos = 2n ** 33n + 5n;
  assert.equal(await sys.pwrite(fd, b('far'), 0, 3, pos), 3);
  const st = await sys.fstat(fd);
  assert.equal(st[S.size], pos + 3n);
  const out = Buffer.alloc(5);
  assert.equal(await sys.pread(fd, out, 0, 5, pos - 2n), 5);
  assert.deepEqual(out, Buffer.from([0, 0, 0x66, 0x61, 0x72]));
});

test('pread on an O_PATH fd rejects with EBADF', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'abc');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await assert.rejects(sys.pread(fd, Buffer.alloc(4), 0, 4, 0n), { code: 'EBADF', syscall: 'pread' });
});

// ---------- directories ----------

async function openDir(root: number, fds: number[]): Promise<number> {
  const fd = await sys.openat(root, b('.'), O.O_RDONLY | O.O_DIRECTORY, 0);
  fds.push(fd);
  return fd;
}

test('getdents lists every entry with its inode and type', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'file'), '');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.symlinkSync('file', path.join(dir, 'link'));
  const fd = await openDir(root, fds);
  const buf = Buffer.alloc(4096);
  const n = await sys.getdents(fd, 0n, buf);
  assert.ok(n > 0);
  const seen = new Map<string, [bigint, number]>();
  sys.parseDirents(buf, n, (ino, _off, type, name) => {
    seen.set(name.toString(), [ino, type]);
  });
  assert.deepEqual([...seen.keys()].sort(), ['.', '..', 'file', 'link', 'sub']);
  const DT_DIR = 4, DT_REG = 8, DT_LNK = 10;
  assert.deepEqual(seen.get('file'), [fs.lstatSync(path.join(dir, 'file'), { bigint: true }).ino, DT_REG]);
  assert.equal(seen.get('sub')![1], DT_DIR);
  assert.equal(seen.get('link')![1], DT_LNK);
  assert.equal(await sys.getdents(fd, 0n, buf), n, 'cookie 0 rewinds');
});

test('getdents returns 0 once the directory is exhausted', async (t) => {
  const { root, fds } = await scratch(t);
  const fd = await openDir(root, fds);
  const buf = Buffer.alloc(4096);
  let last = 0n;
  sys.parseDirents(buf, await sys.getdents(fd, 0n, buf), (_i, off) => {
    last = off;
  });
  assert.equal(await sys.getdents(fd, last, buf), 0);
});

test('getdents resumes from a cookie without repeating entries', async (t) => {
  const { dir, root, fds } = await scratch(t);
  for (let i = 0; i < 500; i++) fs.writeFileSync(path.join(dir, `file-${i}`), '');
  const fd = await openDir(root, fds);
  const buf = Buffer.alloc(512);
  const counts = new Map<string, number>();
  const offs = new Set<bigint>();
  let cookie = 0n;
  for (let calls = 0; ; calls++) {
    assert.ok(calls < 1000, 'no progress');
    const n = await sys.getdents(fd, cookie, buf);
    if (n === 0) break;
    // Take at most 3 entries per call so every call really resumes mid-buffer.
    let taken = 0;
    sys.parseDirents(buf, n, (_ino, off, _type, name) => {
      const key = name.toString();
      counts.set(key, (counts.get(key) ?? 0) + 1);
      assert.notEqual(off, 0n);
      assert.ok(!offs.has(off), `d_off ${off} repeated`);
      offs.add(off);
      cookie = off;
      return ++taken < 3;
    });
  }
  assert.equal(counts.size, 502);
  for (let i = 0; i < 500; i++) assert.equal(counts.get(`file-${i}`), 1, `file-${i}`);
  assert.ok([...counts.values()].every((c) => c === 1));
});

test('getdents into a buffer too small for one record rejects with EINVAL', async (t) => {
  const { root, fds } = await scratch(t);
  const fd = await openDir(root, fds);
  await assert.rejects(sys.getdents(fd, 0n, Buffer.alloc(8)), { code: 'EINVAL' });
});

test('parseDirents stops when visit returns false and gives names as views into the buffer', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'a'), '');
  fs.writeFileSync(path.join(dir, 'b'), '');
  const fd = await openDir(root, fds);
  const buf = Buffer.alloc(4096);
  const n = await sys.getdents(fd, 0n, buf);
  const names: Buffer[] = [];
  sys.parseDirents(buf, n, (_i, _o, _t, name) => {
    names.push(name);
    return names.length < 2;
  });
  assert.equal(names.length, 2);
  assert.equal(names[0]!.buffer, buf.buffer);
  assert.ok(!names[0]!.includes(0));
});

// ---------- readdir9p: getdents packed as 9P dirents by the addon ----------

const identityTypes = Uint8Array.from({ length: 16 }, (_, t) => t);
const plainRules: sys.DirentRules = { typeMap: identityTypes, pathPrefix: 0n, maxIno: (1n << 63n) - 1n, dotdotPath: 0n };

test('readdir9p packs every entry as a 9P dirent, resumes from its cookie and stops at a full reply', async (t) => {
  const { dir, root, fds } = await scratch(t);
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, `file-${i}`), '');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.symlinkSync('file-0', path.join(dir, 'link'));
  const fd = await openDir(root, fds);
  const frame = Buffer.alloc(2000, 0xee);
  const seen = new Map<string, Dirent>();
  const sizes: number[] = [];
  let cookie = 0n;
  for (let calls = 0; ; calls++) {
    assert.ok(calls < 100, 'no progress');
    // A window in the middle of the frame: nothing outside it may be written.
    const [bytes, resume, more] = await sys.readdir9p(fd, cookie, frame, 100, 1800, plainRules);
    assert.equal(more, false);
    assert.ok(bytes <= 1800);
    assert.ok(frame.subarray(0, 100).every((x) => x === 0xee) && frame.subarray(100 + bytes).every((x) => x === 0xee), 'wrote outside its window');
    if (bytes === 0) break;
    const entries = parseWireDirents(frame.subarray(100, 100 + bytes));
    sizes.push(bytes);
    for (const e of entries) {
      assert.ok(!seen.has(e.name.toString()), `${e.name} listed twice`);
      seen.set(e.name.toString(), e);
    }
    assert.equal(resume, entries.at(-1)!.offset, 'resumes after the last entry written');
    frame.fill(0xee);
    cookie = resume;
  }
  assert.equal(seen.size, 304);
  // Every reply but the last was filled until the next entry (24 + a name of up to 9) did not fit.
  for (const bytes of sizes.slice(0, -1)) assert.ok(1800 - bytes < 24 + 9, `stopped at ${bytes} bytes while the next entry would have fitted`);
  const DT_DIR = 4, DT_REG = 8, DT_LNK = 10;
  const f = seen.get('file-7')!;
  assert.deepEqual([f.qid.type, f.qid.version, f.qid.path, f.type], [0, 0, fs.lstatSync(path.join(dir, 'file-7'), { bigint: true }).ino, DT_REG]);
  assert.deepEqual([seen.get('sub')!.qid.type, seen.get('sub')!.type], [0x80, DT_DIR]);
  assert.deepEqual([seen.get('link')!.qid.type, seen.get('link')!.type], [0x02, DT_LNK]);
});

test('readdir9p applies the rules: type map, path prefix, "..", reserved names, and stops at an inode it cannot map', async (t) => {
  const { dir, root, fds } = await scratch(t);
  for (const n of ['a', 'b', '.hidden-1', '.hidden-2']) fs.writeFileSync(path.join(dir, n), '');
  const fd = await openDir(root, fds);
  const frame = Buffer.alloc(4096);
  const typeMap = Uint8Array.from(identityTypes);
  typeMap[8] = 0; // DT_REG shown as DT_UNKNOWN, as the mapped models do
  const prefix = (1n << 63n) | (5n << 48n);
  const reserved = Buffer.from('.hidden-1\0.hidden-2\0');
  const [bytes, , more] = await sys.readdir9p(fd, 0n, frame, 0, frame.length, { typeMap, pathPrefix: prefix, maxIno: (1n << 48n) - 1n, dotdotPath: 77n, reserved });
  assert.equal(more, false);
  const got = new Map(parseWireDirents(frame.subarray(0, bytes)).map((e) => [e.name.toString(), e]));
  assert.deepEqual([...got.keys()].sort(), ['.', '..', 'a', 'b']);
  assert.equal(got.get('a')!.type, 0);
  assert.equal(got.get('a')!.qid.path, prefix | fs.lstatSync(path.join(dir, 'a'), { bigint: true }).ino);
  assert.equal(got.get('..')!.qid.path, 77n);
  assert.equal(got.get('.')!.type, 4);

  // No inode number here is below 1: the first entry stops the call, which asks JavaScript to go on.
  const [none, resume, stopped] = await sys.readdir9p(fd, 0n, frame, 0, frame.length, { ...plainRules, maxIno: 0n });
  assert.deepEqual([none, resume, stopped], [0, 0n, true]);
});

test('readdir9p checks its arguments', async (t) => {
  const { root, fds } = await scratch(t);
  const fd = await openDir(root, fds);
  const frame = Buffer.alloc(64);
  assert.throws(() => sys.readdir9p(fd, 0n, frame, 60, 10, plainRules), RangeError);
  assert.throws(() => sys.readdir9p(fd, 0n, frame, 0, 64, { ...plainRules, typeMap: new Uint8Array(4) }), RangeError);
  assert.throws(() => sys.readdir9p(fd, 0n, frame, 0, 64, { ...plainRules, reserved: Buffer.from('x') }), RangeError);
  // A reply too small for any entry gets none, and the cookie it started from.
  assert.deepEqual(await sys.readdir9p(fd, 0n, frame, 0, 20, plainRules), [0, 0n, false]);
});

test('names are raw bytes, not UTF-8 strings', async (t) => {
  const { dir, root, fds } = await scratch(t);
  const name = Buffer.from([0x66, 0xff, 0xfe, 0x80]); // not valid UTF-8
  fds.push(await sys.openat(root, name, O.O_WRONLY | O.O_CREAT, 0o644));
  const fd = await openDir(root, fds);
  const buf = Buffer.alloc(4096);
  const found: Buffer[] = [];
  sys.parseDirents(buf, await sys.getdents(fd, 0n, buf), (_i, _o, _t, n) => {
    if (n.length > 2) found.push(Buffer.from(n));
  });
  assert.deepEqual(found, [name]);
  assert.deepEqual(fs.readdirSync(dir, { encoding: 'buffer' }), [name]);
});

// ---------- creating, linking, removing ----------

test('mkdirat creates a directory with at most the given permissions', async (t) => {
  const { dir, root } = await scratch(t);
  await sys.mkdirat(root, b('d'), 0o750);
  const st = fs.statSync(path.join(dir, 'd'));
  assert.ok(st.isDirectory());
  assert.equal(st.mode & 0o700, 0o700);
  assert.equal(st.mode & 0o027, 0);
  await assert.rejects(sys.mkdirat(root, b('d'), 0o750), { code: 'EEXIST' });
});

test('mknodat makes a fifo', async (t) => {
  const { dir, root, fds } = await scratch(t);
  await sys.mknodat(root, b('fifo'), O.S_IFIFO | 0o644, 0n);
  assert.ok(fs.lstatSync(path.join(dir, 'fifo')).isFIFO());
  const [fd, st] = await sys.openPath(root, b('fifo'));
  fds.push(fd);
  assert.equal(fileType(st), O.S_IFIFO);
});

test('mknodat passes a 64-bit device number through to a char device', { skip: !isRoot && 'needs root' }, async (t) => {
  const { root, fds } = await scratch(t);
  const dev = (1n << 8n) | 3n; // makedev(1, 3): /dev/null
  await sys.mknodat(root, b('null'), O.S_IFCHR | 0o600, dev);
  const [fd, st] = await sys.openPath(root, b('null'));
  fds.push(fd);
  assert.equal(fileType(st), O.S_IFCHR);
  assert.equal(st[S.rdev], dev);
});

test('symlinkat stores the target bytes exactly and readlink returns them', async (t) => {
  const { dir, root, fds } = await scratch(t);
  const target = Buffer.from([0x2e, 0x2e, 0x2f, 0xff, 0x61]); // "../\xffa", dangling, not UTF-8
  await sys.symlinkat(target, root, b('link'));
  assert.deepEqual(fs.readlinkSync(path.join(dir, 'link'), { encoding: 'buffer' }), target);
  const [fd] = await sys.openPath(root, b('link'));
  fds.push(fd);
  assert.deepEqual(await sys.readlink(fd), target);
});

test('readlink of a non-symlink rejects with ENOENT', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await assert.rejects(sys.readlink(fd), { code: 'ENOENT' });
});

test('linkat from an O_PATH fd gives the same inode', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'data');
  fs.mkdirSync(path.join(dir, 'd'));
  const [fd] = await sys.openPath(root, b('f'));
  const [dfd] = await sys.openPath(root, b('d'));
  fds.push(fd, dfd);
  await sys.linkat(fd, dfd, b('g'));
  const a = fs.statSync(path.join(dir, 'f'), { bigint: true });
  const g = fs.statSync(path.join(dir, 'd/g'), { bigint: true });
  assert.equal(g.ino, a.ino);
  assert.equal(a.nlink, 2n);
});

test('linkat of a symlink fd links the symlink, not its target', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'target'), '');
  fs.symlinkSync('target', path.join(dir, 'link'));
  const [fd] = await sys.openPath(root, b('link'));
  fds.push(fd);
  await sys.linkat(fd, root, b('link2'));
  assert.equal(fs.lstatSync(path.join(dir, 'link2')).ino, fs.lstatSync(path.join(dir, 'link')).ino);
  assert.ok(fs.lstatSync(path.join(dir, 'link2')).isSymbolicLink());
});

test('renameat moves an entry between directories', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  fs.mkdirSync(path.join(dir, 'd'));
  const [dfd] = await sys.openPath(root, b('d'));
  fds.push(dfd);
  await sys.renameat(root, b('f'), dfd, b('g'), 0);
  assert.ok(!fs.existsSync(path.join(dir, 'f')));
  assert.equal(fs.readFileSync(path.join(dir, 'd/g'), 'utf8'), 'x');
});

test('renameat with RENAME_NOREPLACE refuses an existing target with EEXIST', async (t) => {
  const { dir, root } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'a'), 'a');
  fs.writeFileSync(path.join(dir, 'b'), 'b');
  await assert.rejects(sys.renameat(root, b('a'), root, b('b'), O.RENAME_NOREPLACE), { code: 'EEXIST' });
  assert.equal(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'b');
});

test('unlinkat removes files, and directories only with AT_REMOVEDIR', async (t) => {
  const { dir, root } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  fs.mkdirSync(path.join(dir, 'd'));
  await sys.unlinkat(root, b('f'), 0);
  assert.ok(!fs.existsSync(path.join(dir, 'f')));
  await assert.rejects(sys.unlinkat(root, b('d'), 0), { code: 'EISDIR' });
  await sys.unlinkat(root, b('d'), O.AT_REMOVEDIR);
  assert.ok(!fs.existsSync(path.join(dir, 'd')));
});

// ---------- attributes ----------

test('fchmod on an O_PATH fd changes the mode', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  fs.chmodSync(path.join(dir, 'f'), 0o644);
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.fchmod(fd, 0o4711);
  assert.equal(fs.statSync(path.join(dir, 'f')).mode & 0o7777, 0o4711);
});

test('fchown on an O_PATH fd with -1 leaves both ids alone', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const before = fs.statSync(path.join(dir, 'f'));
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.fchown(fd, -1, 0xffffffff);
  const after = fs.statSync(path.join(dir, 'f'));
  assert.equal(after.uid, before.uid);
  assert.equal(after.gid, before.gid);
});

test('fchown on an O_PATH fd changes the owner', { skip: !isRoot && 'needs root' }, async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.fchown(fd, 4321, 8765);
  const st = fs.statSync(path.join(dir, 'f'));
  assert.equal(st.uid, 4321);
  assert.equal(st.gid, 8765);
  await sys.fchown(fd, 1234, -1);
  assert.equal(fs.statSync(path.join(dir, 'f')).gid, 8765);
});

test('fchown on a symlink fd changes the link, not its target', { skip: !isRoot && 'needs root' }, async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'target'), '');
  fs.symlinkSync('target', path.join(dir, 'link'));
  const [fd] = await sys.openPath(root, b('link'));
  fds.push(fd);
  await sys.fchown(fd, 4321, 4321);
  assert.equal(fs.lstatSync(path.join(dir, 'link')).uid, 4321);
  assert.equal(fs.statSync(path.join(dir, 'target')).uid, process.getuid!());
});

test('utimens on an O_PATH fd sets both times exactly', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.utimens(fd, 1_000n, 111n, 2n ** 33n, 999_999_999n);
  const st = fs.statSync(path.join(dir, 'f'), { bigint: true });
  assert.equal(st.atimeNs, 1_000n * 1_000_000_000n + 111n);
  assert.equal(st.mtimeNs, 2n ** 33n * 1_000_000_000n + 999_999_999n);
});

test('utimens with UTIME_OMIT keeps a time and UTIME_NOW sets it to now', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.utimens(fd, 10n, 0n, 20n, 0n);
  const t0 = BigInt(Date.now()) / 1000n;
  await sys.utimens(fd, 0n, sys.UTIME_OMIT, 0n, sys.UTIME_NOW);
  const st = await sys.fstat(fd);
  assert.equal(st[S.atimeSec], 10n);
  assert.ok(st[S.mtimeSec]! >= t0 - 1n && st[S.mtimeSec]! <= t0 + 5n);
});

test('utimens on a symlink fd changes the link, not its target', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'target'), '');
  fs.symlinkSync('target', path.join(dir, 'link'));
  const targetMtime = fs.statSync(path.join(dir, 'target'), { bigint: true }).mtimeNs;
  const [fd] = await sys.openPath(root, b('link'));
  fds.push(fd);
  await sys.utimens(fd, 5n, 0n, 7n, 0n);
  assert.equal(fs.lstatSync(path.join(dir, 'link'), { bigint: true }).mtimeNs, 7_000_000_000n);
  assert.equal(fs.statSync(path.join(dir, 'target'), { bigint: true }).mtimeNs, targetMtime);
});

test('truncate through an O_PATH fd sets the size', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'abcdef');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.truncate(fd, 2n, false);
  assert.equal(fs.readFileSync(path.join(dir, 'f'), 'utf8'), 'ab');
  await sys.truncate(fd, 2n ** 32n + 1n, false);
  assert.equal((await sys.fstat(fd))[S.size], 2n ** 32n + 1n);
});

test('truncate of an open fd uses ftruncate', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'abcdef');
  const fd = await sys.openat(root, b('f'), O.O_WRONLY, 0);
  const rfd = await sys.openat(root, b('f'), O.O_RDONLY, 0);
  fds.push(fd, rfd);
  await sys.truncate(fd, 3n, true);
  assert.equal(fs.readFileSync(path.join(dir, 'f'), 'utf8'), 'abc');
  await assert.rejects(sys.truncate(rfd, 1n, true), { code: 'EINVAL', syscall: 'ftruncate' });
});

test('fsync and fdatasync succeed on an open fd and reject an O_PATH fd', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const fd = await sys.openat(root, b('f'), O.O_WRONLY, 0);
  const [pfd] = await sys.openPath(root, b('f'));
  fds.push(fd, pfd);
  await sys.fsync(fd, false);
  await sys.fsync(fd, true);
  await assert.rejects(sys.fsync(pfd, false), { code: 'EBADF', syscall: 'fsync' });
  await assert.rejects(sys.fsync(pfd, true), { code: 'EBADF', syscall: 'fdatasync' });
});

test('fstatfs reports the filesystem of an O_PATH fd', async (t) => {
  const { dir, root } = await scratch(t);
  const r = await sys.fstatfs(root);
  const ref = fs.statfsSync(dir, { bigint: true });
  assert.ok(r instanceof BigUint64Array);
  assert.equal(r.length, 9);
  assert.equal(r[sys.StatfsIndex.type], ref.type);
  assert.equal(r[sys.StatfsIndex.bsize], ref.bsize);
  assert.equal(r[sys.StatfsIndex.blocks], ref.blocks);
  assert.ok(r[sys.StatfsIndex.namelen]! > 0n);
});

// ---------- xattrs ----------

test('user xattrs can be set, read, listed and removed through an O_PATH fd', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  const value = Buffer.from([0, 1, 2, 0xff, 0]);
  await sys.setxattr(fd, b('user.one'), value, 0);
  await sys.setxattr(fd, b('user.two'), Buffer.alloc(0), 0);
  assert.deepEqual(await sys.getxattr(fd, b('user.one')), value);
  assert.deepEqual(await sys.getxattr(fd, b('user.two')), Buffer.alloc(0));
  const list = (await sys.listxattr(fd)).toString('latin1').split('\0').filter((s) => s.startsWith('user.'));
  assert.deepEqual(list.sort(), ['user.one', 'user.two']);
  await sys.removexattr(fd, b('user.one'));
  await assert.rejects(sys.getxattr(fd, b('user.one')), { code: 'ENODATA' });
});

test('listxattr of a file without xattrs is empty', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  const list = (await sys.listxattr(fd)).toString('latin1').split('\0').filter((s) => s.startsWith('user.'));
  assert.deepEqual(list, []);
});

test('setxattr with XATTR_CREATE on an existing name gives EEXIST', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await sys.setxattr(fd, b('user.x'), b('1'), O.XATTR_CREATE);
  await assert.rejects(sys.setxattr(fd, b('user.x'), b('2'), O.XATTR_CREATE), { code: 'EEXIST' });
  assert.deepEqual(await sys.getxattr(fd, b('user.x')), b('1'));
});

test('setxattr with XATTR_REPLACE on a missing name gives ENODATA', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await assert.rejects(sys.setxattr(fd, b('user.x'), b('2'), O.XATTR_REPLACE), { code: 'ENODATA' });
  await sys.setxattr(fd, b('user.x'), b('1'), 0);
  await sys.setxattr(fd, b('user.x'), b('3'), O.XATTR_REPLACE);
  assert.deepEqual(await sys.getxattr(fd, b('user.x')), b('3'));
});

test('removexattr of a missing name gives ENODATA', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), '');
  const [fd] = await sys.openPath(root, b('f'));
  fds.push(fd);
  await assert.rejects(sys.removexattr(fd, b('user.none')), { code: 'ENODATA', syscall: 'removexattr' });
});

// ---------- OFD locks ----------

test('a second fd\'s WRLCK is refused while the first holds one, and granted after close', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const a = await sys.openat(root, b('f'), O.O_RDWR, 0);
  const c = await sys.openat(root, b('f'), O.O_RDWR, 0);
  fds.push(c);
  assert.equal(await sys.lock(a, sys.LockType.WRLCK, 0n, 0n), true);
  assert.equal(await sys.lock(c, sys.LockType.WRLCK, 0n, 0n), false);
  assert.equal(await sys.lock(c, sys.LockType.RDLCK, 100n, 1n), false, 'length 0 covers to EOF and beyond');
  await sys.close(a);
  assert.equal(await sys.lock(c, sys.LockType.WRLCK, 0n, 0n), true);
});

test('read locks from two fds coexist but block a write lock', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const a = await sys.openat(root, b('f'), O.O_RDONLY, 0);
  const c = await sys.openat(root, b('f'), O.O_RDWR, 0);
  fds.push(a, c);
  assert.equal(await sys.lock(a, sys.LockType.RDLCK, 0n, 10n), true);
  assert.equal(await sys.lock(c, sys.LockType.RDLCK, 5n, 10n), true);
  assert.equal(await sys.lock(c, sys.LockType.WRLCK, 0n, 1n), false);
  assert.equal(await sys.lock(c, sys.LockType.WRLCK, 10n, 5n), true, 'beyond a\'s range');
});

test('unlocking releases a range for the other fd', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const a = await sys.openat(root, b('f'), O.O_RDWR, 0);
  const c = await sys.openat(root, b('f'), O.O_RDWR, 0);
  fds.push(a, c);
  assert.equal(await sys.lock(a, sys.LockType.WRLCK, 0n, 100n), true);
  assert.equal(await sys.lock(a, sys.LockType.UNLCK, 0n, 100n), true);
  assert.equal(await sys.lock(c, sys.LockType.WRLCK, 0n, 100n), true);
});

test('getlock reports the conflicting lock in 9P numbering, or UNLCK when none', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const a = await sys.openat(root, b('f'), O.O_RDWR, 0);
  const c = await sys.openat(root, b('f'), O.O_RDWR, 0);
  fds.push(a, c);
  assert.equal((await sys.getlock(c, sys.LockType.WRLCK, 0n, 0n)).type, sys.LockType.UNLCK);
  assert.equal(await sys.lock(a, sys.LockType.RDLCK, 2n ** 40n, 7n), true);
  const l = await sys.getlock(c, sys.LockType.WRLCK, 0n, 0n);
  assert.equal(l.type, sys.LockType.RDLCK);
  assert.equal(l.start, 2n ** 40n);
  assert.equal(l.length, 7n);
  assert.equal(l.pid, -1, 'OFD locks have no owning pid');
  assert.equal((await sys.getlock(c, sys.LockType.RDLCK, 0n, 0n)).type, sys.LockType.UNLCK, 'readers share');
});

test('lock with a type outside 0..2 rejects with EINVAL; on an O_PATH fd with EBADF', async (t) => {
  const { dir, root, fds } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const fd = await sys.openat(root, b('f'), O.O_RDWR, 0);
  const [pfd] = await sys.openPath(root, b('f'));
  fds.push(fd, pfd);
  await assert.rejects(sys.lock(fd, 3, 0n, 0n), { code: 'EINVAL' });
  await assert.rejects(sys.lock(pfd, sys.LockType.WRLCK, 0n, 0n), { code: 'EBADF' });
});

// ---------- argument validation ----------

test('names with a NUL byte are rejected with EINVAL', async (t) => {
  const { root } = await scratch(t);
  const bad = b('a\0b');
  const calls: Array<Promise<unknown>> = [
    sys.openPath(root, bad),
    sys.openat(root, bad, O.O_RDONLY, 0),
    sys.mkdirat(root, bad, 0o755),
    sys.symlinkat(b('t'), root, bad),
    sys.symlinkat(bad, root, b('l')),
    sys.unlinkat(root, bad, 0),
    sys.openRoot(bad),
    sys.getxattr(root, b('user.a\0')),
  ];
  for (const p of calls) await assert.rejects(p, { errno: E.EINVAL, code: 'EINVAL' });
});

test('names containing "/" are rejected with EINVAL, so no call can walk a multi-component path', async (t) => {
  const { dir, root } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'd'));
  fs.symlinkSync('/', path.join(dir, 'up'));
  await assert.rejects(sys.openPath(root, b('up/etc')), { errno: E.EINVAL });
  await assert.rejects(sys.walk(root, [b('d/..')]), { errno: E.EINVAL });
  await assert.rejects(sys.mkdirat(root, b('d/x'), 0o755), { errno: E.EINVAL });
  await assert.rejects(sys.openat(root, b('d/f'), O.O_RDWR | O.O_CREAT, 0o644), { errno: E.EINVAL });
  await assert.rejects(sys.unlinkat(root, b('d/x'), 0), { errno: E.EINVAL });
  await assert.rejects(sys.renameat(root, b('d'), root, b('up/tmp'), 0), { errno: E.EINVAL });
  assert.equal(fs.existsSync(path.join(dir, 'd', 'x')), false);
});

test('names of PATH_MAX bytes or more are rejected with ENAMETOOLONG', async (t) => {
  const { root } = await scratch(t);
  await assert.rejects(sys.openPath(root, Buffer.alloc(4096, 'a')), { code: 'ENAMETOOLONG' });
  await assert.rejects(sys.openPath(root, Buffer.alloc(300, 'a')), { code: 'ENAMETOOLONG' }, 'kernel NAME_MAX');
});

test('wrong argument types throw TypeError synchronously', async (t) => {
  const { root } = await scratch(t);
  const any = (v: unknown) => v as never;
  assert.throws(() => sys.openPath(root, any('name')), TypeError);
  assert.throws(() => sys.openPath(any('3'), b('x')), TypeError);
  assert.throws(() => sys.walk(root, any(b('x'))), TypeError);
  assert.throws(() => sys.walk(root, any([b('x'), 'y'])), TypeError);
  assert.throws(() => sys.pread(root, Buffer.alloc(1), 0, 1, any(0)), TypeError);
  assert.throws(() => sys.pread(root, any(new Uint16Array(1)), 0, 1, 0n), TypeError);
  assert.throws(() => sys.truncate(root, 0n, any(1)), TypeError);
});

test('64-bit arguments outside [-2^63, 2^64) throw RangeError', async (t) => {
  const { root } = await scratch(t);
  assert.throws(() => sys.pread(root, Buffer.alloc(1), 0, 1, 2n ** 64n), RangeError);
  assert.throws(() => sys.pread(root, Buffer.alloc(1), 0, 1, -(2n ** 63n) - 1n), RangeError);
});

// ---------- constants and bookkeeping ----------

test('O holds the host\'s flag and mode values', () => {
  const c = fs.constants as unknown as Record<string, number>;
  for (const [k, v] of Object.entries(O)) if (k in c) assert.equal(v, c[k], k);
  assert.equal(O.O_ACCMODE, 3);
  assert.equal(O.AT_REMOVEDIR, 0x200);
  assert.equal(O.RENAME_NOREPLACE, 1);
  assert.ok(O.O_PATH > 0);
  assert.equal(sys.UTIME_NOW, (1n << 30n) - 1n);
  assert.equal(sys.UTIME_OMIT, (1n << 30n) - 2n);
});

test('openFdCount returns to its starting value after opening and closing', async (t) => {
  const { dir } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'a'));
  fs.writeFileSync(path.join(dir, 'a/f'), 'x');
  const start = sys.openFdCount();
  const [root] = await sys.openRoot(b(dir));
  const w = await sys.walk(root, [b('a'), b('f')]);
  const partial = await sys.walk(root, [b('a'), b('missing')]);
  const [p] = await sys.openPath(root, b('a'));
  const r = await sys.reopen(w.fds[1]!, O.O_RDONLY);
  const o = await sys.openat(p, b('f'), O.O_RDONLY, 0);
  await assert.rejects(sys.openat(p, b('nope'), O.O_RDONLY, 0));
  assert.equal(sys.openFdCount(), start + 7);
  for (const fd of [root, ...w.fds, ...partial.fds, p, r]) await sys.close(fd);
  sys.closeSync(o);
  assert.equal(sys.openFdCount(), start);
});

test('many concurrent calls all complete', async (t) => {
  const { dir, root } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const start = sys.openFdCount();
  const opened = await Promise.all(Array.from({ length: 64 }, () => sys.openPath(root, b('f'))));
  assert.equal(new Set(opened.map(([fd]) => fd)).size, 64);
  await Promise.all(opened.map(([fd]) => sys.close(fd)));
  assert.equal(sys.openFdCount(), start);
});

test('raiseFdLimit lifts the soft descriptor limit to the hard one', () => {
  const modulePath = new URL('../../src/backend/local/sys.js', import.meta.url).href;
  const script = `import(${JSON.stringify(modulePath)}).then((s) => console.log(s.raiseFdLimit()))`;
  // A child started with a soft limit of 1024 under a hard limit of 4096 (lowering is always allowed).
  const out = execFileSync('sh', ['-c', `ulimit -Sn 1024 && ulimit -Hn 4096 && exec "${process.execPath}" --input-type=module -e '${script}'`], { encoding: 'utf8' });
  assert.equal(out.trim(), '4096');
});
