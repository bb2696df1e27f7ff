import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startNpmStart, startVirtfs, type VirtfsProcess } from '../kernel/virtfs-process.js';
import { OLD_SPACE_FLOOR_MIB, THREAD_POOL_SIZE } from '../../src/cli/startup-restart.js';

// libuv starts every thread of its pool at the pool's first use, which the server makes before
// it prints its mount line (opening the export). Besides the pool, Node 20 runs the main thread
// and a handful of V8 and inspector threads (7 in all with a pool of 4): only a pool of 16 takes
// a process past 16 + 1 threads.
const AT_LEAST = THREAD_POOL_SIZE + 1;

function threadCount(pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

/** The process below `pid` (itself included) whose command line runs the CLI. */
function cliProcessUnder(pid: number): number {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'latin1');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
  }
  const queue = [pid];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const cmdline = readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0');
    if (cmdline.some((a) => a.endsWith('cli/main.js')) && cmdline.includes('serve')) return p;
    queue.push(...(children.get(p) ?? []));
  }
  throw new Error(`no virtfs serve process below ${pid}`);
}

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'virtfs-pool-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

/** What `look` reads of the CLI process of a server started by `start`, before stopping it. */
async function whileServing<T>(start: () => Promise<VirtfsProcess>, look: (cliPid: number) => T): Promise<T> {
  const server = await start();
  try {
    return look(cliProcessUnder(server.pid));
  } finally {
    await server.stop();
  }
}

const poolOf = (start: () => Promise<VirtfsProcess>) => whileServing(start, threadCount);

test(`node dist/src/cli/main.js serve (the bin entry's file) runs ${THREAD_POOL_SIZE} disk threads`, async () => {
  const threads = await poolOf(() => startVirtfs(dir));
  assert.ok(threads >= AT_LEAST, `the server runs ${threads} threads, fewer than a pool of ${THREAD_POOL_SIZE} needs`);
});

test(`npm start runs ${THREAD_POOL_SIZE} disk threads`, async () => {
  const threads = await poolOf(() => startNpmStart(['--listen', 'tcp:127.0.0.1:0']));
  assert.ok(threads >= AT_LEAST, `the server runs ${threads} threads, fewer than a pool of ${THREAD_POOL_SIZE} needs`);
});

test('a UV_THREADPOOL_SIZE set before the start is kept', async () => {
  process.env.UV_THREADPOOL_SIZE = '2';
  let threads: number;
  try {
    threads = await poolOf(() => startVirtfs(dir));
  } finally {
    delete process.env.UV_THREADPOOL_SIZE;
  }
  // 2 pool threads and the same handful of others, not a pool of 16.
  assert.ok(threads < AT_LEAST, `the server runs ${threads} threads with UV_THREADPOOL_SIZE=2`);
});

test('under --cpu-prof the server serves without restarting, says so, and leaves its profile', async () => {
  const profiles = mkdtempSync(join(tmpdir(), 'virtfs-prof-'));
  try {
    const server = await startVirtfs(dir, [], { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profiles}`] });
    const code = await server.stop();
    assert.equal(code, 0, `stderr: ${server.stderr()}`);
    assert.match(server.stderr(), /profiling, so not restarting to set UV_THREADPOOL_SIZE=16 and --initial-old-space-size=64;/);
    assert.equal(readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile')).length, 1);
  } finally {
    rmSync(profiles, { recursive: true, force: true });
  }
});

/** The node options a CLI process runs with. */
function nodeArgsOf(cliPid: number): string[] {
  const cmdline = readFileSync(`/proc/${cliPid}/cmdline`, 'latin1').split('\0');
  return cmdline.slice(1, cmdline.findIndex((a) => a.endsWith('cli/main.js')));
}

test(`the server runs with V8's old-generation limit floored at ${OLD_SPACE_FLOOR_MIB} MiB, under npm start too`, async () => {
  const want = `--initial-old-space-size=${OLD_SPACE_FLOOR_MIB}`;
  assert.ok((await whileServing(() => startVirtfs(dir), nodeArgsOf)).includes(want));
  assert.ok((await whileServing(() => startNpmStart(['--listen', 'tcp:127.0.0.1:0']), nodeArgsOf)).includes(want));
});

test('a heap floor given to node is kept, and the pool is still sized', async () => {
  const { args, threads } = await whileServing(
    () => startVirtfs(dir, [], { nodeArgs: ['--initial-old-space-size=40'] }),
    (pid) => ({ args: nodeArgsOf(pid), threads: threadCount(pid) }),
  );
  assert.deepEqual(args.filter((a) => a.startsWith('--initial-old-space-size')), ['--initial-old-space-size=40']);
  assert.ok(threads >= AT_LEAST, `the server runs ${threads} threads`);
});
