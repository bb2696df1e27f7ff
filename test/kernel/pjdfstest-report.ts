import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { judge, type ExpectedFailure } from './conformance.js';
import type { PjdfstestRun } from './pjdfstest-runner.js';

/** One run's verdict per file: problems empty means the file passed (or failed only as documented). */
export interface Verdict {
  file: string;
  problems: string[];
}

export function verdicts(run: PjdfstestRun, expected: Map<string, ExpectedFailure>): Verdict[] {
  return run.files.map((file) => ({ file, problems: judge(file, run.results.get(file), run.stderr.get(file) ?? [], expected.get(file)) }));
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

/** A plain table of every file, for a terminal. */
export function textTable(run: PjdfstestRun, vs: Verdict[]): string {
  const rows = [['file', 'plan', 'ok', 'fail', 'todo', 's', 'verdict']];
  for (const v of vs) {
    const r = run.results.get(v.file);
    const documented = r && r.failed > 0 && v.problems.length === 0;
    const verdict = v.problems.length ? 'FAIL' : documented ? 'documented' : 'ok';
    rows.push(r ? [v.file, String(r.planned), String(r.passed), String(r.failed), String(r.todo), String(r.seconds), verdict] : [v.file, '-', '-', '-', '-', '-', verdict]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

/** A markdown summary: totals, wall times, and every file that failed with its failing lines. */
export function markdown(run: PjdfstestRun, vs: Verdict[]): string {
  const failedFiles = vs.filter((v) => (run.results.get(v.file)?.failed ?? 1) > 0 || v.problems.length > 0);
  const sha = createHash('sha256').update(readFileSync(run.tarball)).digest('hex').slice(0, 16);
  const out = [
    `# pjdfstest against virtfs: ${run.config.name}`,
    '',
    `- Server: \`virtfs serve ${run.config.serverArgs.join(' ')}\` running as ${process.getuid?.() === 0 ? 'root' : `uid ${process.getuid?.()}`}, exporting a fresh temp directory`,
    `- Client: Linux \`${run.kernelPackage}\`, \`mount -t 9p -o trans=tcp,version=9p2000.L\` (cache=none), busybox guest as root`,
    `- Suite: \`${basename(run.tarball)}\` (sha256 ${sha}…), ${run.files.length} files, ${run.parts.length} guests of one CPU`,
    `- Wall time: ${seconds(run.ms)} (${run.parts.map((p) => `part ${p.name}: ${p.files.length} files, ${seconds(p.ms)}`).join('; ')})`,
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    '',
    `${vs.length - failedFiles.length} of ${vs.length} files pass every case; ${failedFiles.length} fail some (documented and accepted: ${failedFiles.filter((v) => v.problems.length === 0).length}).`,
    '',
  ];
  if (failedFiles.length) {
    out.push('| File | Planned | Failed | Documented in conformance.md | Failing cases (first lines) |', '|---|---|---|---|---|');
    for (const v of failedFiles) {
      const r = run.results.get(v.file);
      const detail = r ? r.notOk.slice(0, 5).join('<br>') : v.problems.join('<br>');
      const cell = (s: string) => s.replace(/\|/g, '\\|');
      out.push(`| \`${v.file}\` | ${r?.planned ?? '-'} | ${r?.failed ?? 'did not finish'} | ${v.problems.length ? 'no' : 'yes'} | ${cell(detail)} |`);
    }
  }
  return `${out.join('\n')}\n`;
}
