import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { wholeOption } from '../cli-options.js';
import { guestBench, type GuestBenchOptions } from './guest-bench.js';
import { formatGuestTable, formatMounts } from './guest-table.js';
import { formatCensus } from './request-census.js';

/** `npm run bench:guest`: the in-guest rows (docs/performance.md). */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '2000' },
      'seq-mib': { type: 'string', default: '64' },
      runs: { type: 'string', default: '1' },
      msize: { type: 'string', default: '1048576' },
      cache: { type: 'string', default: 'none' },
      dir: { type: 'string', default: '/var/tmp/virtfs-guest-bench' },
      'no-diod': { type: 'boolean', default: false },
      'timeout-min': { type: 'string', default: '90' },
      census: { type: 'boolean', default: false },
    },
  });
  if (!['none', 'loose', 'mmap'].includes(values.cache)) throw new Error(`--cache must be none, loose or mmap, not ${values.cache}`);
  const o: GuestBenchOptions = {
    files: wholeOption('files', values.files),
    seqMiB: wholeOption('seq-mib', values['seq-mib']),
    runs: wholeOption('runs', values.runs),
    msize: wholeOption('msize', values.msize),
    cache: values.cache as GuestBenchOptions['cache'],
    dir: values.dir,
    diod: !values['no-diod'],
    timeoutMs: wholeOption('timeout-min', values['timeout-min']) * 60_000,
    census: values.census,
    log: (l) => process.stderr.write(`bench:guest: ${l}\n`),
  };
  const started = new Date();
  const loadStart = loadavg().map((x) => x.toFixed(2)).join(' ');
  const r = await guestBench(o);
  process.stdout.write(
    [
      `${started.toISOString()} · ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}) · load average at start ${loadStart}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')} · node ${process.version}`,
      `guest: 1 vCPU, software emulation (TCG) · cache=${o.cache} · msize asked ${o.msize} · median of ${o.runs} run(s) · ${Math.round((Date.now() - started.getTime()) / 1000)} s in all`,
      formatMounts(r),
      '',
      formatGuestTable(r),
      '',
      ...(o.census ? [formatCensus(r.census, o.diod ? ['virtfs', 'diod'] : ['virtfs'])] : []),
    ].join('\n'),
  );
  if (r.problems.length) {
    process.stderr.write(`bench:guest: ${r.problems.length} problem(s); the guest's last lines:\n${r.console.split('\n').slice(-20).join('\n')}\n`);
    process.exitCode = 1;
  }
}

await main().catch((err: Error) => {
  process.stderr.write(`bench:guest: ${err.message}\n`);
  process.exit(1);
});
