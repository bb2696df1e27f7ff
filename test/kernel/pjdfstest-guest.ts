import { GUEST_DIR } from './pjdfstest-assets.js';

/** What the guest reports for one pjdfstest script. */
export interface FileResult {
  file: string;
  /** From the script's `1..N` line; -1 if it printed none. */
  planned: number;
  passed: number;
  /** `not ok` lines without `# TODO`: the only ones that count as failures. */
  failed: number;
  /** `ok`/`not ok` lines marked `# TODO`: cases the suite itself expects may fail here. */
  todo: number;
  /** Whether the results were numbered 1, 2, 3... with none missing or repeated. */
  inOrder: boolean;
  exitCode: number;
  seconds: number;
  /** The failing lines (at most NOTOK_SHOWN of them), e.g. "not ok 5 - tried ..., expected 0, got EPERM". */
  notOk: string[];
  /** The first lines the script wrote to stderr. */
  stderr: string[];
}

/** A script still running after this long is killed and counts as unfinished (the slowest, chown/00.t, takes ~100 s). */
export const FILE_TIMEOUT_S = 600;
const NOTOK_SHOWN = 30;

/**
 * Summarise a script's TAP in the guest, so the serial console carries one line per file plus its
 * failures, not the ~9,000 `ok` lines of the whole suite. Result lines must be numbered in order
 * from 1 for `inOrder`; anything else (e.g. "not ok - could not find pjdfstest app") breaks it.
 */
export const SUMMARY_AWK = `
BEGIN { planned = -1; seen = 0; ok = 0; fail = 0; todo = 0; order = 1; shown = 0 }
/^1\\.\\.[0-9]+$/ { planned = substr($0, 4) + 0; next }
/^(not )?ok( |$)/ {
  notok = ($1 == "not"); n = notok ? $3 : $2; seen++
  if (n != seen) order = 0
  if ($0 ~ /# TODO/) todo++
  else if (!notok) ok++
  else { fail++; if (shown < ${NOTOK_SHOWN}) { print "PJDNOTOK " f " " substr($0, 1, 240); shown++ } }
}
END { print "PJD " f " " planned " " ok " " fail " " todo " " order " " rc " " secs }
`;

/**
 * The guest's workload (sourced by /init in the mount): each script runs as root from a fresh
 * directory of its own (`<part>-<n>`), as the suite requires, with its output summarised.
 */
export function guestScript(files: string[], part: string): string {
  const lines = [
    `pjd_awk='${SUMMARY_AWK}'`,
    'pjd_run() {',
    '  if ! mkdir "/mnt/$2" || ! cd "/mnt/$2"; then echo "PJDERR $1 cannot make a fresh directory /mnt/$2"; return; fi',
    '  s=$(date +%s)',
    `  timeout -s KILL ${FILE_TIMEOUT_S} sh ${GUEST_DIR}/tests/$1 </dev/null >/tmp/pjd.out 2>/tmp/pjd.err`,
    '  rc=$?',
    '  e=$(date +%s)',
    '  cd /mnt',
    '  awk -v f="$1" -v rc=$rc -v secs=$((e - s)) "$pjd_awk" /tmp/pjd.out',
    '  head -n 3 /tmp/pjd.err | cut -c 1-200 | sed "s|^|PJDERR $1 |"',
    '}',
    ...files.map((f, i) => `pjd_run ${f} ${part}-${String(i).padStart(3, '0')}`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Read the guest console's PJD lines back into one result per file that reported, and the stderr
 * lines of every file (including those that never reported).
 */
export function parsePjdOutput(console: string): { results: Map<string, FileResult>; stderr: Map<string, string[]> } {
  const results = new Map<string, FileResult>();
  const notOk = new Map<string, string[]>();
  const stderr = new Map<string, string[]>();
  const push = (m: Map<string, string[]>, k: string, v: string) => m.set(k, [...(m.get(k) ?? []), v]);
  for (const line of console.split(/\r?\n/)) {
    const n = /PJDNOTOK (\S+) (.*)$/.exec(line);
    if (n) push(notOk, n[1]!, n[2]!);
    const e = /PJDERR (\S+) (.*)$/.exec(line);
    if (e) push(stderr, e[1]!, e[2]!);
    const s = /PJD (\S+) (-?\d+) (\d+) (\d+) (\d+) ([01]) (\d+) (\d+)$/.exec(line);
    if (s) {
      const [file, planned, passed, failed, todo, inOrder, exitCode, seconds] = s.slice(1) as [string, ...string[]];
      results.set(file, {
        file,
        planned: Number(planned),
        passed: Number(passed),
        failed: Number(failed),
        todo: Number(todo),
        inOrder: inOrder === '1',
        exitCode: Number(exitCode),
        seconds: Number(seconds),
        notOk: [],
        stderr: [],
      });
    }
  }
  for (const r of results.values()) {
    r.notOk = notOk.get(r.file) ?? [];
    r.stderr = stderr.get(r.file) ?? [];
  }
  return { results, stderr };
}

/** The test numbers of a file's failing lines ("not ok 5 - ..." gives 5; an unnumbered line gives NaN). */
export const failingNumbers = (r: FileResult) => r.notOk.map((l) => Number(/^not ok (\d+)/.exec(l)?.[1] ?? NaN));
