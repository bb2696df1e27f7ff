import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sys from '../../src/backend/local/sys.js';
import { StatIndex as S } from '../../src/backend/local/sys.js';

// Calls on descriptors marked local run on the calling thread (see sys.markLocal): they finish
// even while every thread of the pool is stuck, which is how these tests tell where a call ran.

const b = (s: string): Buffer => Buffer.from(s);
const POOL = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

/** Occupy every pool thread with a read of a fifo nobody writes until the returned release runs. */
let fifos = 0;

function blockPool(t: TestContext, dir: string): () => Promise<void> {
  const fifo = path.join(dir, `fifo${fifos++}`);
  execFileSync('mkfifo', [fifo]);
  const fd = fs.openSync(fifo, fs.constants.O_RDWR);
  const reads = Array.from({ length: POOL }, () => new Promise<void>((r) => fs.read(fd, Buffer.alloc(1), 0, 1, null, () => r())));
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    fs.writeSync(fd, Buffer.alloc(POOL));
    await Promise.all(reads);
    fs.closeSync(fd);
  };
  t.after(release);
  return release;
}

/** Whether `p` settles within a few turns of the event loop. */
async function settlesSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 5 && !settled; i++) await new Promise((r) => setTimeout(r, 20));
  return settled;
}

async function scratch(t: TestContext): Promise<{ dir: string; root: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtfs-local-'));
  const [root] = await sys.openRoot(b(dir));
  t.after(() => {
    sys.closeSync(root);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, root };
}

test('lookups, stats and small cached reads below a descriptor marked local do not wait for the pool', async (t) => {
  const { dir, root } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'd'));
  fs.writeFileSync(path.join(dir, 'd', 'f'), 'hello');
  fs.readFileSync(path.join(dir, 'd', 'f'));
  sys.markLocal(root);
  const release = blockPool(t, dir);
  const walked = sys.walk(root, [b('d'), b('f')]);
  assert.ok(await settlesSoon(walked), 'the walk finished with the pool busy');
  const { fds, errno } = await walked;
  assert.equal(errno, 0);
  const file = await sys.reopen(fds[1]!, sys.O.O_RDONLY);
  const buf = Buffer.alloc(16);
  const read = sys.pread(file, buf, 0, 16, 0n);
  assert.ok(await settlesSoon(read), 'the cached read finished with the pool busy');
  assert.equal(buf.subarray(0, await read).toString(), 'hello');
  assert.ok(await settlesSoon(sys.fstat(fds[1]!)));
  for (const fd of [file, ...fds]) await sys.close(fd);
  await release();
});

test('small writes into the page cache run on the calling thread while setWritesInline allows; the rest keep the pool', async (t) => {
  const { dir, root } = await scratch(t);
  sys.markLocal(root);
  t.after(() => sys.setWritesInline(false));
  const create = (name: string, flags = sys.O.O_RDWR) => sys.openat(root, b(name), flags | sys.O.O_CREAT, 0o644);
  const [f, off, dsync, big, sparse, wronly, later] = await Promise.all([
    create('f'), create('off'), create('dsync', sys.O.O_RDWR | sys.O.O_DSYNC), create('big'), create('sparse'), create('wronly', sys.O.O_WRONLY), create('later'),
  ]);
  await sys.truncate(sparse, 1n << 20n, true);
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  const fifo = await sys.openat(root, b('fifo'), sys.O.O_RDWR, 0);
  const page = Buffer.alloc(4096, 0x61);
  const bit = Buffer.from('0123456789');
  const release = blockPool(t, dir);
  const atOnce = (p: Promise<number>) => settlesSoon(p);

  sys.setWritesInline(false);
  const waited = [sys.pwrite(off, page, 0, 4096, 0n)];
  assert.equal(await atOnce(waited[0]!), false, 'switched off: the pool');
  sys.setWritesInline(true);
  assert.ok(await atOnce(sys.pwrite(f, page, 0, 4096, 0n)), 'a page into an empty file');
  assert.ok(await atOnce(sys.pwritev(f, [bit, page], 4096n)), 'two pieces past the end');
  assert.ok(await atOnce(sys.pwrite(f, bit, 0, 10, 100n)), 'part of a cached page inside the file');
  assert.ok(await atOnce(sys.pwrite(wronly, page, 0, 4096, 0n)), 'a write-only file');
  assert.ok(await atOnce(sys.pwrite(wronly, bit, 0, 10, 100n)), 'part of a cached page of a write-only file (cachestat needs no read access)');
  waited.push(sys.pwrite(sparse, bit, 0, 10, 8192n + 100n));
  assert.equal(await atOnce(waited.at(-1)!), false, 'part of a page inside the file that is not cached (it might have to be read first)');
  assert.ok(await atOnce(sys.pwrite(sparse, page, 0, 4096, 0n)), 'a whole page inside the file needs nothing read');
  assert.ok(await atOnce(sys.pwrite(sparse, bit, 0, 10, 100n)), 'then part of that page, now cached');
  waited.push(sys.pwrite(dsync, page, 0, 4096, 0n));
  assert.equal(await atOnce(waited.at(-1)!), false, 'O_DSYNC waits for the disk');
  waited.push(sys.pwrite(big, Buffer.alloc(256 << 10), 0, 256 << 10, 0n));
  assert.equal(await atOnce(waited.at(-1)!), false, 'over 128 KiB');
  waited.push(sys.pwrite(fifo, bit, 0, 10, 0n).catch(() => 0));
  assert.equal(await atOnce(waited.at(-1)!), false, 'not a regular file');
  const truncating = sys.truncate(later, 0n, true);
  waited.push(sys.pwrite(f, bit, 0, 10, 0n));
  assert.equal(await atOnce(waited.at(-1)!), false, 'a truncation is running in the pool');
  await release();
  await Promise.all([truncating, ...waited]);
  assert.ok(await atOnce(sys.pwrite(later, bit, 0, 10, 0n)), 'at once again once the truncation is over');
  const text = fs.readFileSync(path.join(dir, 'f'), 'latin1');
  assert.equal(text, '0123456789' + 'a'.repeat(90) + '0123456789' + 'a'.repeat(4096 - 110) + '0123456789' + 'a'.repeat(4096));
  assert.equal(fs.readFileSync(path.join(dir, 'wronly'), 'latin1'), 'a'.repeat(100) + '0123456789' + 'a'.repeat(4096 - 110));
  for (const fd of [f, off, dsync, big, sparse, wronly, later, fifo]) await sys.close(fd);
});

test('a walk step given as known is that object while its entry is, with the entry\'s full stat, and opened anew once another object took the name', async (t) => {
  const { dir, root } = await scratch(t);
  fs.mkdirSync(path.join(dir, 'd'));
  fs.writeFileSync(path.join(dir, 'd', 'f'), 'x'.repeat(1234));
  for (const local of [false, true]) {
    if (local) sys.markLocal(root);
    const first = await sys.walk(root, [b('d')]);
    const reopened = await sys.reopen(first.fds[0]!, sys.O.O_PATH); // handed out without a stat
    for (const known of [first.fds[0]!, reopened]) {
      const again = await sys.walk(root, [b('d'), b('f')], undefined, Int32Array.of(known, -1));
      assert.equal(again.errno, 0);
      assert.equal(again.fds[0], -1, `local ${local}: the known step is not opened again`);
      const d = fs.lstatSync(path.join(dir, 'd'), { bigint: true });
      const st = again.stats[0]!;
      assert.deepEqual([st[S.ino], st[S.mode], st[S.nlink], st[S.size], st[S.mtimeSec]], [d.ino, d.mode, d.nlink, d.size, d.mtimeMs / 1000n], 'its stat is the entry\'s');
      assert.equal(again.stats[1]![S.size], 1234n);
      await sys.close(again.fds[1]!);
    }
    fs.renameSync(path.join(dir, 'd'), path.join(dir, 'old'));
    fs.mkdirSync(path.join(dir, 'd'));
    const replaced = await sys.walk(root, [b('d')], undefined, Int32Array.of(first.fds[0]!));
    assert.ok(replaced.fds[0]! >= 0, `local ${local}: another object at the name is opened`);
    assert.equal(replaced.stats[0]![S.ino], fs.lstatSync(path.join(dir, 'd'), { bigint: true }).ino);
    for (const fd of [replaced.fds[0]!, reopened, first.fds[0]!]) await sys.close(fd);
    fs.rmSync(path.join(dir, 'd'), { recursive: true });
    fs.renameSync(path.join(dir, 'old'), path.join(dir, 'd'));
  }
});

/** `small` (5 files) and `large` (3,000 long names: over 16 KiB by st_size) under dir. */
function smallAndLargeDirs(dir: string): void {
  fs.mkdirSync(path.join(dir, 'small'));
  fs.mkdirSync(path.join(dir, 'large'));
  for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, 'small', `f${i}`), '');
  for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(dir, 'large', `a-rather-long-entry-name-${i}`), '');
}

function identityRules(): sys.DirentRules {
  return { typeMap: Uint8Array.from({ length: 16 }, (_, i) => i), pathPrefix: 0n, maxIno: (1n << 63n) - 1n, dotdotPath: 0n };
}

test('a small directory is listed on the calling thread whatever the reply\'s size, a large one on the pool', async (t) => {
  const { dir, root } = await scratch(t);
  smallAndLargeDirs(dir);
  assert.ok(fs.statSync(path.join(dir, 'large')).size > 16 << 10, 'the large directory is large by st_size');
  sys.markLocal(root);
  const small = await sys.openat(root, b('small'), sys.O.O_RDONLY | sys.O.O_DIRECTORY, 0);
  const large = await sys.openat(root, b('large'), sys.O.O_RDONLY | sys.O.O_DIRECTORY, 0);
  const rules = identityRules();
  const frame = Buffer.alloc(1 << 20);
  const release = blockPool(t, dir);
  const listedSmall = sys.readdir9p(small, 0n, frame, 0, frame.length, rules);
  assert.ok(await settlesSoon(listedSmall), 'the small directory was listed with the pool busy');
  assert.ok((await listedSmall)[0] > 0);
  const listedLarge = sys.readdir9p(large, 0n, frame, 0, frame.length, rules);
  assert.equal(await settlesSoon(listedLarge), false, 'the large directory waited for a pool thread');
  await release();
  assert.ok((await listedLarge)[0] > 3000 * 24);
  for (const fd of [small, large]) await sys.close(fd);
});

test('readdir9pNow lists a small local directory at once, as readdir9p does, and does nothing for a large or unmarked one', async (t) => {
  const { dir, root } = await scratch(t);
  smallAndLargeDirs(dir);
  const rules = identityRules();
  const away = await sys.openat(root, b('small'), sys.O.O_RDONLY | sys.O.O_DIRECTORY, 0);
  const frame = Buffer.alloc(1 << 16, 0xee);
  assert.equal(sys.readdir9pNow(away, 0n, frame, 0, frame.length, rules), undefined, 'not marked local: it would hop');
  assert.ok(frame.every((x) => x === 0xee), 'and wrote nothing');
  sys.markLocal(root);
  const small = await sys.openat(root, b('small'), sys.O.O_RDONLY | sys.O.O_DIRECTORY, 0);
  const large = await sys.openat(root, b('large'), sys.O.O_RDONLY | sys.O.O_DIRECTORY, 0);
  const now = sys.readdir9pNow(small, 0n, frame, 0, frame.length, rules);
  assert.ok(now);
  const later = Buffer.alloc(frame.length);
  const [bytes, resume, more] = await sys.readdir9p(small, 0n, later, 0, later.length, rules);
  assert.deepEqual(now, [bytes, resume, more]);
  assert.ok(bytes > 7 * 24 && !more, 'all seven entries');
  assert.deepEqual(frame.subarray(0, bytes), later.subarray(0, bytes));
  assert.deepEqual(sys.readdir9pNow(small, resume, frame, 0, frame.length, rules)?.[0], 0, 'the end, at once');
  frame.fill(0xee);
  assert.equal(sys.readdir9pNow(large, 0n, frame, 0, frame.length, rules), undefined, 'a large directory goes to the pool');
  assert.ok(frame.every((x) => x === 0xee), 'and wrote nothing');
  for (const fd of [away, small, large]) await sys.close(fd);
});

test('an open that truncates runs on the calling thread for a new or small file, on the pool for a large one', async (t) => {
  const { dir, root } = await scratch(t);
  fs.writeFileSync(path.join(dir, 'small'), Buffer.alloc(4096, 1));
  fs.writeFileSync(path.join(dir, 'large'), Buffer.alloc(4 << 20, 1));
  assert.ok(fs.statSync(path.join(dir, 'large')).blocks > 2048, 'the large file has more than 1 MiB of blocks');
  sys.markLocal(root);
  const [largePath] = await sys.openPath(root, b('large'));
  const [smallPath] = await sys.openPath(root, b('small'));
  const TRUNC = sys.O.O_WRONLY | sys.O.O_TRUNC;
  const release = blockPool(t, dir);
  const fresh = sys.openat(root, b('fresh'), TRUNC | sys.O.O_CREAT, 0o644);
  assert.ok(await settlesSoon(fresh), 'O_CREAT|O_TRUNC of a new name finished with the pool busy');
  const small = sys.openat(root, b('small'), TRUNC, 0);
  assert.ok(await settlesSoon(small), 'O_TRUNC of a small file finished with the pool busy');
  const smallAgain = sys.reopen(smallPath, TRUNC);
  assert.ok(await settlesSoon(smallAgain), 'a reopen with O_TRUNC of a small file finished with the pool busy');
  const large = sys.openat(root, b('large'), TRUNC, 0);
  assert.equal(await settlesSoon(large), false, 'O_TRUNC of a large file waited for a pool thread');
  await release();
  assert.equal(fs.statSync(path.join(dir, 'large')).size, 0);
  fs.writeFileSync(path.join(dir, 'large'), Buffer.alloc(4 << 20, 1));
  const release2 = blockPool(t, dir);
  const largeAgain = sys.reopen(largePath, TRUNC);
  assert.equal(await settlesSoon(largeAgain), false, 'a reopen with O_TRUNC of a large file waited for a pool thread');
  await release2();
  assert.equal(fs.statSync(path.join(dir, 'small')).size, 0);
  for (const fd of [await fresh, await small, await smallAgain, await large, await largeAgain, largePath, smallPath]) await sys.close(fd);
});

test('calls on descriptors nobody marked local wait for the pool', async (t) => {
  const { dir, root } = await scratch(t);
  const release = blockPool(t, dir);
  const st = sys.fstat(root);
  assert.equal(await settlesSoon(st), false, 'the stat waited for a pool thread');
  await release();
  assert.equal((await st)[S.nlink]! >= 2n, true);
});

test('a lookup from a local descriptor onto another filesystem leaves the calling thread there', { skip: process.getuid?.() !== 0 && 'mounts a tmpfs' }, async (t) => {
  const { dir, root } = await scratch(t);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'virtfs-test', mnt]);
  try {
    await walkOntoMount(t, dir, root, mnt);
  } finally {
    execFileSync('umount', [mnt]);
  }
});

async function walkOntoMount(t: TestContext, dir: string, root: number, mnt: string): Promise<void> {
  fs.writeFileSync(path.join(mnt, 'x'), 'x');
  sys.markLocal(root);
  const release = blockPool(t, dir);
  // The walk steps onto the tmpfs: it finishes on the pool, with every step right.
  const walked = sys.walk(root, [b('mnt'), b('x')]);
  assert.equal(await settlesSoon(walked), false, 'the walk went to the pool at the mount');
  await release();
  const { fds, stats, errno } = await walked;
  assert.equal(errno, 0);
  assert.equal(stats[1]![S.size], 1n);
  assert.notEqual(stats[0]![S.dev], (await sys.fstat(root))[S.dev]);
  const release2 = blockPool(t, dir);
  const st = sys.fstat(fds[1]!);
  assert.equal(await settlesSoon(st), false, 'calls on the other filesystem use the pool');
  await release2();
  await st;
  for (const fd of fds) await sys.close(fd);
}
