import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { wholeOption } from './cli-options.js';
import { prepareFixture, type Fixture } from './fixture.js';
import { measureLimit, measureServer, type Measurement, type Load } from './measure.js';
import { rows as allRows, type Row } from './rows.js';
import { formatFidMemory, measureFidMemory, type FidLoad, type FidMemory } from './fid-memory.js';
import { ensureDiod, startDiodServer, startVirtfsServer, type ServerUnderTest } from './servers.js';
import { formatTable, type RowResult } from './table.js';

/**
 * `npm run bench`: virtfs and diod serve the same prepared directory on loopback, the same
 * pipelined 9P2000.L generator drives each in turn, and one table compares them with each other
 * and with the same work done by direct system calls. See docs/performance.md.
 */

export interface BenchOptions extends Load {
  runs: number;
  rows: readonly Row[];
  dir: string;
  seqSize: number;
  /** Leave diod out (the smoke test; machines without it). */
  diod: boolean;
  /** Also measure each server's peak RSS with this many connections holding fids (fresh servers). */
  fidMemory?: FidLoad;
  log: (line: string) => void;
}

export interface BenchResults {
  rows: RowResult[];
  memory?: { virtfs: FidMemory | string; diod: FidMemory | string };
}

export async function bench(o: BenchOptions): Promise<BenchResults> {
  if (o.diod) await ensureDiod(o.log);
  o.log(`preparing ${o.dir} …`);
  const fixture = prepareFixture(o.dir, o.seqSize, new Set([...o.rows.flatMap((r) => r.needs), ...(o.fidMemory ? (['tree'] as const) : [])]));
  const rows = await measureRows(o, fixture);
  if (!o.fidMemory) return { rows };
  const load = o.fidMemory;
  o.log(`memory: ${load.connections} connections × ${load.fidsPerConnection} fids, each server started afresh …`);
  const memory = {
    virtfs: await attempt(() => withServer(startVirtfsServer(o.dir), (s) => measureFidMemory(s, load))),
    diod: o.diod ? await attempt(() => withServer(startDiodServer(o.dir), (s) => measureFidMemory(s, load))) : 'not run (--no-diod)',
  };
  return { rows, memory };
}

async function withServer<T>(starting: Promise<ServerUnderTest>, use: (s: ServerUnderTest) => Promise<T>): Promise<T> {
  const s = await starting;
  try {
    return await use(s);
  } finally {
    await s.stop();
  }
}

async function measureRows(o: BenchOptions, fixture: Fixture): Promise<RowResult[]> {
  // Without its own warm-up at start: each row warms both servers first (--warmup), and the
  // warm-up's second of CPU would land in the first row's measured window.
  const virtfs = await startVirtfsServer(o.dir, ['--no-warm-up']);
  const diodMissing = o.diod ? undefined : 'not run (--no-diod)';
  const diod = diodMissing === undefined ? await startDiodServer(o.dir) : undefined;
  const results: RowResult[] = [];
  try {
    for (const row of o.rows) {
      const runs = { virtfs: [] as (Measurement | string)[], diod: [] as (Measurement | string)[], limit: [] as (Measurement | string)[], floor: [] as (Measurement | string)[] };
      for (let i = 0; i < o.runs; i++) {
        // Interleaved, so a drift in the machine's load touches every column alike.
        runs.virtfs.push(await attempt(() => measureServer(row, virtfs, fixture, o)));
        runs.diod.push(diod ? await attempt(() => measureServer(row, diod, fixture, o)) : diodMissing!);
        runs.limit.push(await attempt(async () => measureLimit(row, fixture, o)));
        if (row.floor) runs.floor.push(await attempt(() => row.floor!(fixture, o)));
        o.log(`${row.name}: run ${i + 1}/${o.runs} done`);
      }
      results.push({ row, virtfs: median(runs.virtfs), diod: median(runs.diod), limit: median(runs.limit), ...(row.floor ? { floor: median(runs.floor) } : {}) });
    }
  } finally {
    await virtfs.stop();
    await diod?.stop();
  }
  return results;
}

async function attempt<T>(measure: () => Promise<T>): Promise<T | string> {
  try {
    return await measure();
  } catch (err) {
    return (err as Error).message;
  }
}

/** Each field's median over the runs; the first failure, if any run failed. */
function median(runs: readonly (Measurement | string)[]): Measurement | string {
  const failed = runs.find((r): r is string => typeof r === 'string');
  if (failed !== undefined) return failed;
  const ms = runs as readonly Measurement[];
  const mid = (f: (m: Measurement) => number) => {
    const xs = ms.map(f).sort((a, b) => a - b);
    const n = xs.length;
    return n % 2 ? xs[(n - 1) / 2]! : (xs[n / 2 - 1]! + xs[n / 2]!) / 2;
  };
  return { rate: mid((m) => m.rate), cpuPerUnit: mid((m) => m.cpuPerUnit), generatorCpu: mid((m) => m.generatorCpu), msize: ms[0]!.msize, fallbacks: ms[0]!.fallbacks };
}

/** "virtfs 1048576, diod 65536": what each server agreed to, which sizes its seq requests. */
function agreedMsizes(results: readonly RowResult[]): string {
  const seen = new Set<string>();
  for (const r of results) {
    for (const server of ['virtfs', 'diod'] as const) {
      const m = r[server];
      if (typeof m !== 'string') seen.add(`${server} ${m.msize}`);
    }
  }
  return [...seen].join(', ') || 'n/a';
}

/** "1G", "64M", "4096". */
function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(s);
  if (!m) throw new Error(`not a size: ${s}`);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
}

const USAGE = `usage: npm run bench -- [options]   (or node dist/test/bench/bench.js [options])
  --rows A,B,...          rows to run (default: all: ${allRows.map((r) => r.name).join(', ')})
  --runs N                runs per row and server; the table shows medians (default 3)
  --seconds S             length of each run (default 5), after --warmup S (default 1)
  --connections N         connections per server (default 4)
  --workers N             requests in flight per connection (default: each row's own)
  --msize SIZE            msize asked for (default 1M)
  --seq-size SIZE         size of the seq-read and seq-write files (default 1G)
  --dir DIR               the prepared export (default /var/tmp/virtfs-bench; made if missing)
  --no-diod               measure virtfs and the limit only
  --no-memory             skip the memory table
  --memory-connections N  connections of the memory table (default 64)
  --memory-fids N         fids each of them holds (default 1000)
`;

/** Seconds given on the command line, else a usage error. */
function seconds(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} wants seconds (0 or more), not ${JSON.stringify(value)}`);
  return n;
}

/** The command line's options; null when it asks for --help. Throws on anything malformed. */
function options(): BenchOptions | null {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', default: false },
      runs: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '4' },
      workers: { type: 'string' },
      msize: { type: 'string', default: '1M' },
      rows: { type: 'string', default: allRows.map((r) => r.name).join(',') },
      'seq-size': { type: 'string', default: '1G' },
      dir: { type: 'string', default: '/var/tmp/virtfs-bench' },
      'no-diod': { type: 'boolean', default: false },
      'no-memory': { type: 'boolean', default: false },
      'memory-connections': { type: 'string', default: '64' },
      'memory-fids': { type: 'string', default: '1000' },
    },
  });
  if (values.help) return null;
  const wanted = values.rows.split(',');
  const unknown = wanted.filter((n) => !allRows.some((r) => r.name === n));
  if (unknown.length) throw new Error(`unknown rows: ${unknown.join(', ')}`);
  return {
    runs: wholeOption('runs', values.runs),
    seconds: seconds('seconds', values.seconds),
    warmup: seconds('warmup', values.warmup),
    connections: wholeOption('connections', values.connections),
    workers: values.workers === undefined ? undefined : wholeOption('workers', values.workers),
    msize: parseSize(values.msize),
    rows: allRows.filter((r) => wanted.includes(r.name)),
    dir: values.dir,
    seqSize: parseSize(values['seq-size']),
    diod: !values['no-diod'],
    fidMemory: values['no-memory']
      ? undefined
      : { connections: wholeOption('memory-connections', values['memory-connections']), fidsPerConnection: wholeOption('memory-fids', values['memory-fids']) },
    log: (l) => process.stderr.write(`bench: ${l}\n`),
  };
}

async function main(): Promise<void> {
  let o: BenchOptions | null;
  try {
    o = options();
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (o === null) {
    process.stdout.write(USAGE);
    return;
  }
  const started = new Date();
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  let results: RowResult[];
  let memory: BenchResults['memory'];
  try {
    ({ rows: results, memory } = await bench(o));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(
    [
      `${started.toISOString()} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · load average at start ${load} · node ${process.version}`,
      `median of ${o.runs} runs of ${o.seconds} s (after ${o.warmup} s warm-up) · ${o.connections} connections · rows: ${o.rows.map((r) => `${r.name} ${(o.workers ?? r.workersPerConnection) * o.connections} in flight`).join(', ')}`,
      `msize asked ${o.msize}, agreed: ${agreedMsizes(results)}`,
      `load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
      '',
      formatTable(results),
      '',
      ...(memory && o.fidMemory ? [formatFidMemory(o.fidMemory, memory.virtfs, memory.diod), ''] : []),
    ].join('\n'),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
