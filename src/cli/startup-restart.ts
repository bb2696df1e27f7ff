import { execve } from '../backend/local/sys.js';

/**
 * Threads in libuv's pool, where every disk operation runs: with libuv's default of 4, four
 * slow operations (a large fsync, a slow disk) would stall every client's stat.
 */
export const THREAD_POOL_SIZE = 16;

/**
 * The floor of V8's old-generation limit, in MiB (`--initial-old-space-size`). The server's own
 * heap is about 8 MiB, so V8 sets that limit near 31 MiB, and it counts the socket's read buffers
 * (memory outside the heap) allocated since the last full collection against what is left. Once
 * earlier work has grown the young generation to 16 MiB, the rest is under that size and V8
 * starts a full collection after every young one: measured in `npm run bench`, a mark-compact
 * every 20-30 ms and twice the CPU per MiB written. Below 64 the storm came back (32 did not
 * stop it); the floor is a limit, not an allocation, so an idle server stays small.
 */
export const OLD_SPACE_FLOOR_MIB = 64;

const OLD_SPACE_FLAG = /^--initial[-_]old[-_]space[-_]size\b/;
const POOL_SETTING = `UV_THREADPOOL_SIZE=${THREAD_POOL_SIZE}`;
const HEAP_SETTING = `--initial-old-space-size=${OLD_SPACE_FLOOR_MIB}`;

/**
 * libuv sizes its pool once, at first use, from UV_THREADPOOL_SIZE, and Node's ES-module loader
 * uses the pool before the first line of any module runs; V8 reads its heap flags when it makes
 * the heap. Setting either from here is too late, so unless both were given when Node started
 * (either is respected, whatever the value), the command restarts itself in place (execve: same
 * pid, descriptors and arguments) with what is missing.
 */
export function ensureStartupSettings(): void {
  const setPool = process.env.UV_THREADPOOL_SIZE === undefined;
  const setHeap = !process.execArgv.some((a) => OLD_SPACE_FLAG.test(a));
  if (!setPool && !setHeap) return;
  const missing = [setPool ? POOL_SETTING : '', setHeap ? HEAP_SETTING : ''].filter(Boolean).join(' and ');
  // A profiler's SIGPROF, sent just before the exec, kills the new image (its handler is gone):
  // under --cpu-prof or --prof the process keeps what it started with.
  if (process.execArgv.some((a) => /^--(cpu-)?prof\b/.test(a))) {
    process.stderr.write(`virtfs: warning: profiling, so not restarting to set ${missing}; set them when starting node to have them\n`);
    return;
  }
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
  if (setPool) env.push(POOL_SETTING);
  const nodeArgs = setHeap ? [HEAP_SETTING, ...process.execArgv] : process.execArgv;
  try {
    execve(process.execPath, [process.argv0, ...nodeArgs, ...process.argv.slice(1)], env);
  } catch (err) {
    process.stderr.write(`virtfs: warning: cannot restart to set ${missing} (${(err as Error).message})\n`);
  }
}
