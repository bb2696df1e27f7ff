import type { Measurement } from './measure.js';
import type { Row } from './rows.js';

/** The medians of one row: each server's and the limit's, or why a column is missing. */
export interface RowResult {
  row: Row;
  virtfs: Measurement | string;
  diod: Measurement | string;
  limit: Measurement | string;
  /** The row's socket floor, for rows that have one. */
  floor?: Measurement | string;
}

const HEADER = [
  'row', 'unit', 'virtfs/s', 'diod/s', 'v/d rate', 'limit/s', 'v/limit',
  'virtfs CPU/unit', 'diod CPU/unit', 'v/d CPU', 'limit CPU/unit', 'gen CPU v', 'gen CPU d',
];

/** One markdown table, readable in a terminal too. Missing cells are `n/a`; reasons go below it. */
export function formatTable(results: readonly RowResult[]): string {
  const lines: string[][] = [HEADER];
  const notes: string[] = [];
  for (const { row, virtfs, diod, limit, floor } of results) {
    const v = typeof virtfs === 'string' ? undefined : virtfs;
    const d = typeof diod === 'string' ? undefined : diod;
    const l = typeof limit === 'string' ? undefined : limit;
    for (const [who, m] of [['virtfs', virtfs], ['diod', diod], ['limit', limit]] as const) {
      if (typeof m === 'string') notes.push(`${row.name}, ${who}: ${m}`);
      else if (m.fallbacks.length) notes.push(`${row.name}, ${who}: answered EOPNOTSUPP to ${m.fallbacks.join(', ')}; the generator fell back as the Linux client does (Tunlinkat → walk + Tremove, Trenameat → Trename)`);
    }
    if (typeof floor === 'string') notes.push(`${row.name}, socket floor: ${floor}`);
    else if (floor) {
      notes.push(
        `${row.name}, socket floor (this process: pread 1 MiB from the page cache + write to a loopback TCP socket, no protocol): ` +
          `${rate(floor)} ${row.unit}/s at ${cpu(floor)} per ${row.unit}; virtfs ${ratio(v?.rate, floor.rate)} of its rate at ${ratio(v?.cpuPerUnit, floor.cpuPerUnit)} its CPU`,
      );
    }
    lines.push([
      row.name,
      `${row.unit}`,
      rate(v), rate(d), ratio(v?.rate, d?.rate), rate(l), ratio(v?.rate, l?.rate),
      cpu(v), cpu(d), ratio(v?.cpuPerUnit, d?.cpuPerUnit), cpu(l),
      percent(v?.generatorCpu), percent(d?.generatorCpu),
    ]);
  }
  const widths = HEADER.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const out = [fmt(lines[0]!), `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.slice(1).map(fmt)];
  if (notes.length) out.push('', ...notes.map((n) => `- ${n}`));
  return out.join('\n');
}

function rate(m: Measurement | undefined): string {
  if (!m) return 'n/a';
  return m.rate >= 100 ? String(Math.round(m.rate)) : m.rate.toFixed(1);
}

/** CPU per unit in µs: a 10 ms /proc tick over a few seconds of work is well below 1 %. */
function cpu(m: Measurement | undefined): string {
  return m ? `${(m.cpuPerUnit * 1e6).toFixed(m.cpuPerUnit < 1e-5 ? 2 : 1)} µs` : 'n/a';
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`;
}

function percent(x: number | undefined): string {
  return x === undefined ? 'n/a' : `${Math.round(x * 100)} %`;
}
