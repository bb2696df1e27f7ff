import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { failingNumbers, type FileResult } from './pjdfstest-guest.js';
import { repoRoot } from './virtfs-process.js';

// The pjdfstest cases no server can pass through the Linux 6.1 client are listed, with their
// evidence, in docs/conformance.md; the test reads them from there so the two cannot drift.

export const CONFORMANCE_DOC = join(repoRoot, 'docs', 'conformance.md');
const SECTION = /^## Expected failures\b/;

export interface ExpectedFailure {
  file: string;
  /** The test numbers (TAP `not ok N`) that fail, all of them and only them. */
  cases: number[];
}

/**
 * The rows of the "Expected failures" table: `| \`dir/NN.t\` | 5, 6 | why | evidence |`. A row
 * that names a file but whose cases do not parse is an error, not a row to skip.
 */
export function parseExpectedFailures(markdown: string): Map<string, ExpectedFailure> {
  const out = new Map<string, ExpectedFailure>();
  let inSection = false;
  let sections = 0;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('## ')) inSection = SECTION.test(line);
    if (inSection && line.startsWith('## ')) sections++;
    if (!inSection) continue;
    const row = /^\|\s*`([a-z_]+\/\d+\.t)`\s*\|([^|]*)\|/.exec(line);
    if (!row) continue;
    const cases = row[2]!.split(',').map((c) => c.trim());
    if (cases.some((c) => !/^\d+$/.test(c))) throw new Error(`docs/conformance.md: cases of ${row[1]} are not numbers: ${row[2]}`);
    if (out.has(row[1]!)) throw new Error(`docs/conformance.md lists ${row[1]} twice`);
    out.set(row[1]!, { file: row[1]!, cases: cases.map(Number) });
  }
  // An empty table is allowed (it only makes the test stricter); a missing section is a sign the
  // document was reorganised without this parser.
  if (sections !== 1) throw new Error(`docs/conformance.md should have one "## Expected failures" section, has ${sections}`);
  return out;
}

export function expectedFailures(): Map<string, ExpectedFailure> {
  return parseExpectedFailures(readFileSync(CONFORMANCE_DOC, 'utf8'));
}

/**
 * Everything wrong with one script's run; none means it passed. It must have finished (exit 0,
 * not killed by the time limit), reported every planned result in order, and failed exactly the
 * documented cases: none for an undocumented file; for a documented one, a new failure is caught,
 * and so is a documented failure that now passes (the document would be wrong). It must also have
 * written nothing to stderr.
 */
export function judge(file: string, r: FileResult | undefined, stderr: string[], expected: ExpectedFailure | undefined): string[] {
  if (!r) return [`did not finish: no summary line from the guest${stderr.length ? ` (stderr: ${stderr.join(' / ')})` : ''}`];
  const problems: string[] = [];
  if (r.exitCode !== 0) problems.push(r.exitCode === 137 ? 'killed after the per-file time limit' : `exited with ${r.exitCode}`);
  if (r.planned <= 0) problems.push('printed no plan (1..N)');
  const ran = r.passed + r.failed + r.todo;
  if (!r.inOrder || ran !== r.planned) problems.push(`results incomplete or out of order: ${ran} results for a plan of ${r.planned}`);
  const failing = failingNumbers(r);
  if (failing.length < r.failed) problems.push(`${r.failed} failures, only ${failing.length} shown: ${r.notOk.join(' | ')}`);
  const allowed = new Set(expected?.cases ?? []);
  const unexpected = r.notOk.filter((_, i) => !allowed.has(failing[i]!));
  if (unexpected.length) problems.push(`${unexpected.length} failure(s)${expected ? ' beyond those docs/conformance.md lists' : ''}: ${unexpected.join(' | ')}`);
  const nowPassing = [...allowed].filter((n) => !failing.includes(n));
  if (nowPassing.length) problems.push(`docs/conformance.md lists case(s) ${nowPassing.join(', ')} as failing, but they did not fail: update the document`);
  // The scripts write nothing to stderr when every tool they call exists ("sh: openssl: not
  // found" would otherwise pass unnoticed wherever the missing output is not compared).
  if (stderr.length) problems.push(`wrote to stderr: ${stderr.join(' / ')}`);
  return problems;
}
