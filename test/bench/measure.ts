import { cpuSeconds } from '../integration/process-cpu.js';
import type { Fixture } from './fixture.js';
import { PipelinedConnection } from './pipelined-connection.js';
import type { Row, Shared, Worker } from './rows.js';
import type { ServerUnderTest } from './servers.js';

/** One measurement window of one row. */
export interface Measurement {
  /** Units (operations, entries or MiB) per second. */
  rate: number;
  /** CPU seconds the server (or, for the limit, this process) spent per unit. */
  cpuPerUnit: number;
  /** The generator's CPU over the window, as a fraction of one core. */
  generatorCpu: number;
  /** msize the server agreed to (0 for the limit). */
  msize: number;
  /** Requests the server refused with EOPNOTSUPP, replaced by the Linux client's fallback. */
  fallbacks: string[];
}

/** How hard and how long each measurement drives a server. */
export interface Load {
  /** Seconds of load before the window opens, so connections and caches are warm. */
  warmup: number;
  seconds: number;
  connections: number;
  /**
   * Request chains in flight per connection, instead of the row's own number: 1 measures one
   * request at a time, as a guest's single process issues them (latency, not throughput).
   */
  workers?: number;
  /** msize asked for in Tversion; the server may agree to less (diod 1.0.24 agrees to 64 KiB). */
  msize: number;
}

/**
 * Drive `server` with the row's workers on several connections and count what completes inside
 * the window. The server's CPU is read from /proc at both ends of the same window, so it holds
 * even when the generator, not the server, is the bottleneck.
 */
export async function measureServer(row: Row, server: ServerUnderTest, fixture: Fixture, t: Load): Promise<Measurement> {
  row.settle?.(fixture);
  const conns = await Promise.all(Array.from({ length: t.connections }, () => PipelinedConnection.open(server.port, t.msize, server.aname)));
  const shared: Shared = { cursor: 0 };
  let running = true;
  try {
    const workers: Worker[] = [];
    for (const [ci, conn] of conns.entries()) {
      for (let wi = 0; wi < (t.workers ?? row.workersPerConnection); wi++) workers.push(await row.start({ fixture, conn, id: `${server.name}-${ci}-${wi}`, shared }));
    }
    let done = 0;
    const loops = workers.map(async (w) => {
      while (running) {
        // Not `done += await …`: that would read `done` before the await and lose other workers' counts.
        const units = await w.step();
        done += units;
      }
    });
    // A failing worker ends the measurement at once rather than after the window.
    const failed = Promise.all(loops).then(() => {});
    await Promise.race([sleep(t.warmup), failed]);
    const before = { done, server: cpuSeconds(server.pid), gen: process.cpuUsage(), at: performance.now() };
    await Promise.race([sleep(t.seconds), failed]);
    const after = { done, server: cpuSeconds(server.pid), gen: process.cpuUsage(before.gen), at: performance.now() };
    running = false;
    await Promise.all(loops);
    for (const w of workers) await w.finish();
    const elapsed = (after.at - before.at) / 1000;
    const units = after.done - before.done;
    return {
      rate: units / elapsed,
      cpuPerUnit: (after.server - before.server) / units,
      generatorCpu: (after.gen.user + after.gen.system) / 1e6 / elapsed,
      msize: conns[0]!.msize,
      fallbacks: [...new Set(conns.flatMap((c) => [...c.unsupported]))],
    };
  } finally {
    running = false;
    for (const c of conns) c.close();
  }
}

/**
 * The same work by direct synchronous system calls in this process, one at a time: no protocol,
 * no thread pool, one core. Its CPU per unit is this process's own.
 */
export function measureLimit(row: Row, fixture: Fixture, t: Load): Measurement {
  row.settle?.(fixture);
  const loop = row.limit(fixture, { cursor: 0 }, 'limit');
  try {
    runFor(loop.step, t.warmup);
    const gen = process.cpuUsage();
    const at = performance.now();
    const units = runFor(loop.step, t.seconds);
    const elapsed = (performance.now() - at) / 1000;
    const cpu = process.cpuUsage(gen);
    return { rate: units / elapsed, cpuPerUnit: (cpu.user + cpu.system) / 1e6 / units, generatorCpu: (cpu.user + cpu.system) / 1e6 / elapsed, msize: 0, fallbacks: [] };
  } finally {
    loop.finish();
  }
}

function runFor(step: () => number, seconds: number): number {
  const until = performance.now() + seconds * 1000;
  let units = 0;
  while (performance.now() < until) units += step();
  return units;
}

export const sleep = (seconds: number) => new Promise((r) => setTimeout(r, seconds * 1000));
