import type { GuestBenchResult, Step, StepSample } from './guest-bench.js';
import { STEPS } from './guest-bench.js';

const HEADER = ['step', 'work', 'virtfs s', 'diod s', 'v/d rate', 'virtfs CPU', 'diod CPU', 'v/d CPU', 'guest CPU v', 'guest CPU d'];

/**
 * One markdown table of the in-guest rows: each server's wall seconds (median of the runs) as
 * the guest measured them, the rate ratio (diod's seconds over virtfs's: above 1 is better for
 * virtfs), and each server process's CPU seconds over the same step (below 1 is better for
 * virtfs), and qemu's CPU over the step beside each (the emulated guest: near the step's
 * seconds, the guest and not the server sets the pace). Missing cells are `n/a`; problems are
 * listed under the table.
 */
export function formatGuestTable(r: GuestBenchResult): string {
  const lines: string[][] = [HEADER];
  for (const step of STEPS) {
    const v = median(r.samples.get(`virtfs ${step}`));
    const d = median(r.samples.get(`diod ${step}`));
    lines.push([
      step, work(step, r),
      seconds(v?.seconds), seconds(d?.seconds), ratio(d?.seconds, v?.seconds),
      seconds(v?.serverCpu), seconds(d?.serverCpu), ratio(v?.serverCpu, d?.serverCpu),
      seconds(v?.guestCpu), seconds(d?.guestCpu),
    ]);
  }
  const widths = HEADER.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const out = [fmt(lines[0]!), `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.slice(1).map(fmt)];
  if (r.problems.length) out.push('', ...r.problems.map((p) => `- ${p.split('\n')[0]}`));
  return out.join('\n');
}

/** The guest's mounts, one per line: which options each server was given and what msize it agreed. */
export function formatMounts(r: GuestBenchResult): string {
  return r.mounts.split(';').filter(Boolean).map((m) => `- ${m.trim()}`).join('\n');
}

function work(step: Step, r: GuestBenchResult): string {
  const t = r.tree;
  const mib = (t.bytes / 2 ** 20).toFixed(1);
  switch (step) {
    case 'tar-x': return `${t.files} files, ${t.dirs} dirs, ${mib} MiB + .git`;
    case 'ls-lR': return 'the extracted tree';
    case 'read-all': return `cat every file (${mib} MiB + .git)`;
    case 'cp-a': return 'the extracted tree';
    case 'git-status': return `${t.files} tracked files`;
    case 'seq-write': return `dd ${r.options.seqMiB} MiB, bs=1M`;
    case 'seq-read': return `dd ${r.options.seqMiB} MiB, bs=1M`;
  }
}

function median(xs: readonly StepSample[] | undefined): StepSample | undefined {
  if (!xs?.length) return undefined;
  const mid = (f: (s: StepSample) => number) => {
    const v = xs.map(f).sort((a, b) => a - b);
    const n = v.length;
    return n % 2 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2;
  };
  return { seconds: mid((s) => s.seconds), serverCpu: mid((s) => s.serverCpu), guestCpu: mid((s) => s.guestCpu) };
}

function seconds(x: number | undefined): string {
  return x === undefined ? 'n/a' : x.toFixed(x < 10 ? 2 : 1);
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`;
}


