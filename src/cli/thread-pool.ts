import { execve } from '../backend/local/sys.js';

/**
 * Threads in libuv's pool, where every disk operation runs: with libuv's default of 4, four
 * slow operations (a large fsync, a slow disk) would stall every client's stat.
 */
export const THREAD_POOL_SIZE = 16;

/**
 * libuv sizes its pool once, at first use, from UV_THREADPOOL_SIZE, and Node's ES-module loader
 * uses the pool before the first line of any module runs: setting the variable from here is
 * too late. So unless it was set when Node started (which is respected, whatever the value), the
 * command restarts itself in place (execve: same pid, descriptors and arguments) with it set.
 */
export function ensureThreadPoolSize(): void {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return;
  // A profiler's SIGPROF, sent just before the exec, kills the new image (its handler is gone):
  // under --cpu-prof or --prof the pool keeps libuv's size unless the variable was set.
  if (process.execArgv.some((a) => /^--(cpu-)?prof\b/.test(a))) {
    process.stderr.write(`virtfs: warning: profiling, so not restarting for ${THREAD_POOL_SIZE} disk threads; set UV_THREADPOOL_SIZE=${THREAD_POOL_SIZE} to have them\n`);
    return;
  }
  const env = Object.entries({ ...process.env, UV_THREADPOOL_SIZE: String(THREAD_POOL_SIZE) }).map(([k, v]) => `${k}=${v}`);
  try {
    execve(process.execPath, [process.argv0, ...process.execArgv, ...process.argv.slice(1)], env);
  } catch (err) {
    process.stderr.write(`virtfs: warning: cannot restart with ${THREAD_POOL_SIZE} disk threads (${(err as Error).message}); set UV_THREADPOOL_SIZE=${THREAD_POOL_SIZE}\n`);
  }
}
