import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GetattrMask } from '../../src/protocol/constants.js';
import { P9Error } from '../../src/protocol/errno.js';
import { cpuSeconds } from '../integration/process-cpu.js';
import { wholeOption } from './cli-options.js';
import { PipelinedConnection } from './pipelined-connection.js';
import { ensureDiod, startDiodServer, startVirtfsServer } from './servers.js';

/**
 * One request at a time, the way a guest's single-threaded program talks to its server: the
 * round trip of the cheapest requests (Tgetattr of the attached root, and a Tclunk of a fid never
 * made, answered Rlerror), for virtfs, diod and the Node floor (canned-responder.ts), in the
 * machine states that decide what a wake-up costs on a VM: back to back; back to back with a
 * busy process on the other core (`--hog`); with a pause between requests spent busy (`--think-us`:
 * the client burns its core, as an emulated guest does) or asleep (`--sleep-us`: every core may
 * go idle). Prints the median round trip and the server's CPU per request (docs/performance.md).
 *
 *   node dist/test/bench/round-trip.js [--seconds 3] [--runs 3] [--think-us N | --sleep-us N] [--hog] [--no-diod]
 */
const USAGE = 'usage: node dist/test/bench/round-trip.js [--seconds S] [--runs N] [--think-us N | --sleep-us N] [--hog] [--no-diod]';

interface Target {
  name: string;
  port: number;
  pid: number;
  aname: string;
}

const REQUESTS = {
  getattr: (c: PipelinedConnection) => c.rpc('Tgetattr', { fid: c.root, requestMask: GetattrMask.BASIC }).then(() => {}),
  'clunk-unknown': (c: PipelinedConnection) =>
    c.rpc('Tclunk', { fid: 0xfffffff0 }).then(
      () => Promise.reject(new Error('a Tclunk of an unknown fid succeeded')),
      (e: unknown) => (e instanceof P9Error ? undefined : Promise.reject(e)),
    ),
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      runs: { type: 'string', default: '3' },
      'think-us': { type: 'string', default: '0' },
      'sleep-us': { type: 'string', default: '0' },
      hog: { type: 'boolean', default: false },
      'no-diod': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const seconds = wholeOption('seconds', values.seconds);
  const runs = wholeOption('runs', values.runs);
  const thinkUs = values['think-us'] === '0' ? 0 : wholeOption('think-us', values['think-us']);
  const sleepUs = values['sleep-us'] === '0' ? 0 : wholeOption('sleep-us', values['sleep-us']);
  if (thinkUs && sleepUs) throw new Error('--think-us and --sleep-us: one or the other');
  const pause = pauser(thinkUs, sleepUs);

  const dir = mkdtempSync(join(tmpdir(), 'virtfs-round-trip-'));
  const stops: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    const targets: Target[] = [];
    const virtfs = await startVirtfsServer(dir);
    stops.unshift(() => virtfs.stop());
    targets.push(virtfs);
    if (!values['no-diod']) {
      await ensureDiod((l) => process.stderr.write(`round-trip: ${l}\n`));
      const diod = await startDiodServer(dir);
      stops.unshift(() => diod.stop());
      targets.push(diod);
    }
    const floor = await startCannedResponder();
    stops.unshift(() => void floor.child.kill());
    targets.push({ name: 'node floor', port: floor.port, pid: floor.child.pid!, aname: dir });
    if (values.hog) {
      const hog = spawn(process.execPath, ['-e', 'for (;;);'], { stdio: 'ignore' });
      stops.unshift(() => void hog.kill());
    }

    const regime = values.hog ? 'back to back, a busy process beside' : thinkUs ? `${thinkUs} µs busy between` : sleepUs ? `${sleepUs} µs asleep between` : 'back to back';
    const lines = [
      `${new Date().toISOString()} · ${cpus().length} CPUs · load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} · node ${process.version}`,
      `one request at a time, ${regime}; median of ${runs} run(s) of ${seconds} s, the servers taking turns`,
      '',
      `| request | ${targets.map((t) => `${t.name} round trip`).join(' | ')} | ${targets.map((t) => `${t.name} CPU/req`).join(' | ')} |`,
      `|---|${targets.map(() => '---:|').join('')}${targets.map(() => '---:|').join('')}`,
    ];
    for (const [request, send] of Object.entries(REQUESTS)) {
      const trips = targets.map(() => [] as number[]);
      const cpu = targets.map(() => [] as number[]);
      for (let run = 0; run < runs; run++) {
        for (const [i, t] of targets.entries()) {
          const r = await measure(t, send, seconds, pause);
          trips[i]!.push(r.roundTripUs);
          cpu[i]!.push(r.cpuUs);
        }
      }
      lines.push(`| ${request} | ${trips.map((v) => `${median(v).toFixed(1)} µs`).join(' | ')} | ${cpu.map((v) => `${median(v).toFixed(1)} µs`).join(' | ')} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const stop of stops) await stop();
  }
}

/** Round trips of `send` for `seconds` on a fresh connection, after a second of warm-up. */
async function measure(t: Target, send: (c: PipelinedConnection) => Promise<void>, seconds: number, pause: () => void): Promise<{ roundTripUs: number; cpuUs: number }> {
  const c = await PipelinedConnection.open(t.port, 1 << 20, t.aname);
  try {
    for (const end = Date.now() + 1000; Date.now() < end; ) await send(c);
    const cpu0 = cpuSeconds(t.pid);
    const t0 = performance.now();
    let n = 0;
    let busy = 0;
    for (const end = t0 + seconds * 1000; performance.now() < end; n++) {
      const s = performance.now();
      await send(c);
      busy += performance.now() - s;
      pause();
    }
    return { roundTripUs: (busy / n) * 1000, cpuUs: ((cpuSeconds(t.pid) - cpu0) / n) * 1e6 };
  } finally {
    c.close();
  }
}

/** The pause between a reply and the next request: spent spinning or blocked. */
function pauser(thinkUs: number, sleepUs: number): () => void {
  if (thinkUs) {
    return () => {
      for (const until = performance.now() + thinkUs / 1000; performance.now() < until; );
    };
  }
  if (sleepUs) {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    return () => void Atomics.wait(cell, 0, 0, sleepUs / 1000);
  }
  return () => {};
}

function startCannedResponder(): Promise<{ port: number; child: ChildProcess }> {
  const script = new URL('./canned-responder.js', import.meta.url);
  const child = spawn(process.execPath, [script.pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve({ port: Number(d.toString().trim()), child }));
    child.once('exit', (code) => reject(new Error(`the canned responder exited with ${code}`)));
  });
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

await main().catch((err: Error) => {
  process.stderr.write(`round-trip: ${err.message}\n${USAGE}\n`);
  process.exit(2);
});
