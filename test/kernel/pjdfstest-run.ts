import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { expectedFailures } from './conformance.js';
import { markdown, textTable, verdicts } from './pjdfstest-report.js';
import { DEFAULT_PARTS, runPjdfstest } from './pjdfstest-runner.js';

// Run pjdfstest by hand against any virtfs command line, e.g. for configurations the test suite
// does not run:
//   npm run build && node dist/test/kernel/pjdfstest-run.js --name mapped-file --out docs/x.md \
//     -- --security-model mapped-file --user nobody
// (The export is given to the --user the server drops to; --export-owner UID gives it to another.)
// Prints a table of every file and writes a markdown summary; exits 1 if any file fails beyond
// what docs/conformance.md documents.

const usage = 'usage: node dist/test/kernel/pjdfstest-run.js [--name NAME] [--out FILE.md] [--parts N] [--export-owner UID] -- [virtfs serve options]';
const dash = process.argv.indexOf('--', 2);
const own = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const serverArgs = dash < 0 ? [] : process.argv.slice(dash + 1);
let values: { name?: string; out?: string; parts?: string; 'export-owner'?: string; help?: boolean };
try {
  ({ values } = parseArgs({ args: own, options: { name: { type: 'string' }, out: { type: 'string' }, parts: { type: 'string' }, 'export-owner': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
} catch (err) {
  console.error(`${(err as Error).message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const name = values.name ?? (serverArgs.join(' ') || 'passthrough');
const out = values.out ?? 'pjdfstest-result.md';
const parts = Number(values.parts ?? DEFAULT_PARTS);
const owner = values['export-owner'];
const exportOwner = owner === undefined ? undefined : Number(owner);
if (exportOwner !== undefined && !Number.isInteger(exportOwner)) {
  console.error(`--export-owner must be a uid\n${usage}`);
  process.exit(2);
}

const expected = expectedFailures();
const run = await runPjdfstest({ name, serverArgs, exportOwner }, { parts, log: (m) => console.error(m) });
const vs = verdicts(run, expected);
console.log(textTable(run, vs));
for (const [file, lines] of run.stderr) console.log(`stderr ${file}: ${lines.join(' / ')}`);
for (const v of vs) if (v.problems.length) console.log(`FAIL ${v.file}: ${v.problems.join('; ')}`);
writeFileSync(out, markdown(run, vs));
console.error(`markdown written to ${out}`);
const serverErrors = /"level":(50|60)/.test(run.serverLog);
if (serverErrors) console.log(`the server logged errors:\n${run.serverLog.split('\n').filter((l) => /"level":(50|60)/.test(l)).slice(0, 20).join('\n')}`);
process.exitCode = vs.some((v) => v.problems.length) || serverErrors ? 1 : 0;
