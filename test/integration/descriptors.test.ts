import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openFdCount } from '../../src/backend/local/sys.js';
import { LinuxOpenFlag as O } from '../../src/protocol/constants.js';
import { Errno, P9Error } from '../../src/protocol/errno.js';
import { startVirtfs, type VirtfsProcess } from '../kernel/virtfs-process.js';
import { startFixture, type Fixture } from './server-fixture.js';
import { b, WireClient } from './wire-client.js';

const ALL_ATTRS = 0x7ffn;

/** Run `count` requests made by `make(i)`, `window` at a time on the wire; `batchDone` sees each window's replies. */
async function pipelined<T>(count: number, window: number, make: (i: number) => Promise<T>, batchDone?: (replies: T[], first: number) => void): Promise<void> {
  for (let start = 0; start < count; start += window) {
    const end = Math.min(count, start + window);
    const replies = await Promise.all(Array.from({ length: end - start }, (_, k) => make(start + k)));
    batchDone?.(replies, start);
  }
}

function fdCountOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Paths this process's descriptors name (the in-process server's among them). */
function openPaths(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

describe('one descriptor per object, whatever the fids', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ limits: { maxFidsPerConnection: 250_000 } });
    mkdirSync(join(fx.root, 'sub'));
    writeFileSync(join(fx.root, 'sub', 'file'), 'x');
  });
  after(() => fx.close());

  test('200,000 fids made by walking "." hold no more descriptors than one', async () => {
    const c = await WireClient.attach(fx.port);
    await c.walk(0, 1, 'sub');
    const base = openFdCount();
    let peak = base;
    await pipelined(200_000, 2000, (i) => c.walk(1, 10 + i, '.'), () => (peak = Math.max(peak, openFdCount())));
    await c.rpc('Tgetattr', { fid: 200_009, requestMask: ALL_ATTRS });
    assert.ok(peak - base <= 16, `${peak - base} more descriptors for 200,000 fids of one directory`);
    c.close();
  });

  test('25,000 fids made by walking one path share its objects\' descriptors', async () => {
    const c = await WireClient.attach(fx.port);
    const base = openFdCount();
    let peak = base;
    await pipelined(25_000, 2000, (i) => c.walk(0, 10 + i, 'sub/file'), () => (peak = Math.max(peak, openFdCount())));
    assert.ok(peak - base <= 16, `${peak - base} more descriptors for 25,000 fids of one file`);
    const a = await c.rpc('Tgetattr', { fid: 25_009, requestMask: ALL_ATTRS });
    assert.equal(a.qid.path, BigInt(lstatSync(join(fx.root, 'sub', 'file')).ino));
    c.close();
  });
});

describe('a descriptor budget, with idle objects reclaimed and reopened by name', () => {
  const BUDGET = 8;
  let fx: Fixture;
  let c: WireClient;
  let nextFid = 100;
  const p = (...parts: string[]) => join(fx.root, ...parts);

  before(async () => {
    fx = await startFixture({ maxDescriptors: BUDGET });
    mkdirSync(p('d'));
    mkdirSync(p('filler'));
    for (let i = 0; i < 64; i++) writeFileSync(p('filler', `f${i}`), '');
    c = await WireClient.attach(fx.port);
  });
  after(async () => {
    c.close();
    await fx.close();
  });

  /** Walk to `path` and keep the fid. */
  async function hold(path: string): Promise<number> {
    const fid = nextFid++;
    await c.walk(0, fid, path);
    return fid;
  }

  /** Look up more objects than the budget holds, so every idle descriptor is reclaimed; proven by /proc. */
  async function pushOut(path: string): Promise<void> {
    for (let i = 0; i < 64; i++) await hold(`filler/f${i}`);
    assert.ok(!openPaths().includes(p(path)), `${path} should have given its descriptor back`);
  }

  async function read(fid: number): Promise<string> {
    const f = nextFid++;
    await c.rpc('Twalk', { fid, newfid: f, wnames: [] });
    await c.rpc('Tlopen', { fid: f, flags: O.RDONLY });
    const r = await c.rpc('Tread', { fid: f, offset: 0n, count: 100 });
    await c.rpc('Tclunk', { fid: f });
    return r.data.toString();
  }

  test('descriptors held by looked-up objects stay within the budget however many are held', async () => {
    const base = openFdCount();
    for (let i = 0; i < 64; i++) await hold(`filler/f${i}`);
    assert.ok(openFdCount() - base <= BUDGET, `${openFdCount() - base} descriptors for 64 held files with a budget of ${BUDGET}`);
  });

  test('a reclaimed object is reopened by its name and is the same object', async () => {
    writeFileSync(p('d', 'same'), 'same content');
    const fid = await hold('d/same');
    await pushOut('d/same');
    const a = await c.rpc('Tgetattr', { fid, requestMask: ALL_ATTRS });
    assert.equal(a.qid.path, BigInt(lstatSync(p('d', 'same')).ino));
    assert.equal(await read(fid), 'same content');
  });

  test('a reclaimed object replaced by a host process is ESTALE, never the other object', async () => {
    writeFileSync(p('d', 'victim'), 'original');
    const ino = BigInt(lstatSync(p('d', 'victim')).ino);
    const fid = await hold('d/victim');
    await pushOut('d/victim');
    renameSync(p('d', 'victim'), p('d', 'victim.moved'));
    writeFileSync(p('d', 'victim'), 'impostor');
    for (const attempt of [() => c.rpc('Tgetattr', { fid, requestMask: ALL_ATTRS }), () => read(fid)]) {
      const r = await attempt().catch((e: unknown) => e);
      if (r instanceof P9Error) assert.equal(r.errno, Errno.ESTALE);
      else if (typeof r === 'string') assert.equal(r, 'original');
      else assert.equal((r as { qid: { path: bigint } }).qid.path, ino);
    }
    // A fresh lookup finds what is there now.
    assert.equal(await read(await hold('d/victim')), 'impostor');
  });

  test('a reclaimed object moved away by a host process is ESTALE', async () => {
    writeFileSync(p('d', 'wanderer'), 'w');
    const fid = await hold('d/wanderer');
    await pushOut('d/wanderer');
    renameSync(p('d', 'wanderer'), p('wandered'));
    await assert.rejects(c.rpc('Tgetattr', { fid, requestMask: ALL_ATTRS }), { errno: Errno.ESTALE });
  });

  test('a reclaimed object renamed through the server, and its reclaimed directory, still work', async () => {
    mkdirSync(p('d', 'dir'));
    writeFileSync(p('d', 'dir', 'inner'), 'inner content');
    const dir = await hold('d/dir');
    const inner = await hold('d/dir/inner');
    const d = await hold('d');
    await pushOut('d/dir/inner');
    assert.ok(!openPaths().includes(p('d', 'dir')));
    await c.rpc('Trenameat', { oldDirFid: d, oldName: b('dir'), newDirFid: d, newName: b('renamed') });
    await c.rpc('Trenameat', { oldDirFid: dir, oldName: b('inner'), newDirFid: dir, newName: b('inner2') });
    await pushOut('d/renamed/inner2');
    assert.equal(await read(inner), 'inner content');
    const a = await c.rpc('Tgetattr', { fid: dir, requestMask: ALL_ATTRS });
    assert.equal(a.qid.path, BigInt(lstatSync(p('d', 'renamed')).ino));
  });

  test('an object unlinked through the server while reclaimed keeps working, and keeps its descriptor', async () => {
    writeFileSync(p('d', 'doomed'), 'last words');
    const d = await hold('d');
    const fid = await hold('d/doomed');
    await pushOut('d/doomed');
    await c.rpc('Tunlinkat', { dfid: d, name: b('doomed'), flags: 0 });
    // Without a name it could not be reopened: it is never reclaimed again.
    for (let i = 0; i < 64; i++) await hold(`filler/f${i}`);
    assert.ok(openPaths().includes(`${p('d', 'doomed')} (deleted)`));
    const a = await c.rpc('Tgetattr', { fid, requestMask: ALL_ATTRS });
    assert.equal(a.nlink, 0n);
    assert.equal(await read(fid), 'last words');
  });
});

describe('200,000 fids against a server with a hard limit of 4,096 descriptors', () => {
  const FILES = 10_000;
  const FIDS_PER_FILE = 20;
  let dir: string;
  let srv: VirtfsProcess;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtfs-fds-'));
    mkdirSync(join(dir, 'many'));
    for (let i = 0; i < FILES; i++) writeFileSync(join(dir, 'many', `f${i}`), `content of ${i}`);
    srv = await startVirtfs(dir, ['--max-fids', '250000'], { fdLimit: 4096 });
  });
  after(async () => {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every fid stays usable, descriptors stay within the budget, another client is served', async () => {
    const budget = 4096 / 2;
    const c = await WireClient.attach(srv.port);
    await c.walk(0, 1, 'many');
    const fidOf = (file: number, k: number) => 10 + file * FIDS_PER_FILE + k;
    let peak = 0;
    const sample = () => (peak = Math.max(peak, fdCountOf(srv.pid)));
    // Two lookups of each file (the second may find it live, or reclaimed), the rest clones.
    for (const k of [0, 1]) await pipelined(FILES, 1000, (i) => c.walk(1, fidOf(i, k), `f${i}`), sample);
    await pipelined(FILES * (FIDS_PER_FILE - 2), 2000, (j) => {
      const file = j % FILES;
      return c.rpc('Twalk', { fid: fidOf(file, j % 2), newfid: fidOf(file, 2 + Math.floor(j / FILES)), wnames: [] });
    });
    sample();
    const inos = Array.from({ length: FILES }, (_, i) => BigInt(lstatSync(join(dir, 'many', `f${i}`)).ino));
    await pipelined(FILES * FIDS_PER_FILE, 2000, (j) => c.rpc('Tgetattr', { fid: fidOf(j % FILES, Math.floor(j / FILES)), requestMask: ALL_ATTRS }), (replies, first) => {
      replies.forEach((a, k) => assert.equal(a.qid.path, inos[(first + k) % FILES]));
      sample();
    });
    for (let i = 0; i < FILES; i += 97) {
      const f = fidOf(i, FIDS_PER_FILE - 1);
      await c.rpc('Tlopen', { fid: f, flags: O.RDONLY });
      assert.equal((await c.rpc('Tread', { fid: f, offset: 0n, count: 64 })).data.toString(), `content of ${i}`);
    }
    const other = await WireClient.attach(srv.port);
    await other.walk(0, 1, 'many/f1234');
    await other.rpc('Tlopen', { fid: 1, flags: O.RDONLY });
    assert.equal((await other.rpc('Tread', { fid: 1, offset: 0n, count: 64 })).data.toString(), 'content of 1234');
    sample();
    assert.ok(peak <= budget + 400, `the server held ${peak} descriptors (budget ${budget})`);
    other.close();
    c.close();
  });
});
