import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { expectedFailures, judge } from './conformance.js';
import { pjdfstestAssets } from './pjdfstest-assets.js';
import { runPjdfstest, type PjdfstestConfig, type PjdfstestRun } from './pjdfstest-runner.js';

/**
 * Declare one server configuration's pjdfstest run: a test per script, named after it, which
 * passes only if the script finished every planned case and failed none beyond what
 * docs/conformance.md documents for it.
 */
export function describePjdfstest(config: PjdfstestConfig): void {
  describe(`pjdfstest through the Linux 9p client against virtfs (${config.name})`, { timeout: 40 * 60_000 }, () => {
    // Passthrough hands owners and modes straight to the host, so the suite's chown and setuid
    // cases need a server running as root (and a --user configuration must start as root). One
    // clear failure here is honest; a skip would report nothing, and 100 failing files would bury
    // the cause.
    if (process.getuid?.() !== 0) throw new Error('pjdfstest needs the server to run as root: run the kernel suite as root (CI does)');
    // The tests are named after the scripts, so the suite is built (once, then cached) while they
    // are declared; a missing tarball fails here, loudly, rather than declaring nothing.
    const { files } = pjdfstestAssets();
    const expected = expectedFailures();
    let run: PjdfstestRun;

    before(async () => {
      run = await runPjdfstest(config, { log: (m) => console.log(m) });
    });

    test('docs/conformance.md names only scripts of the suite', () => {
      assert.deepEqual([...expected.keys()].filter((f) => !files.includes(f)), []);
    });

    test('every guest mounted the export and ran its share to the end', (t) => {
      for (const p of run.parts) {
        t.diagnostic(`part ${p.name}: ${p.files.length} files, ${(p.ms / 1000).toFixed(0)} s`);
        const tail = p.guest.console.split('\n').slice(-30).join('\n');
        assert.equal(p.guest.mounted, true, `part ${p.name}: mount failed:\n${tail}`);
        assert.equal(p.guest.timedOut, false, `part ${p.name}: guest timed out:\n${tail}`);
        assert.equal(p.guest.finished, true, `part ${p.name}: guest did not finish:\n${tail}`);
      }
      t.diagnostic(`total: ${files.length} files, ${(run.ms / 1000).toFixed(0)} s`);
    });

    for (const file of files) {
      test(file, () => {
        const problems = judge(file, run.results.get(file), run.stderr.get(file) ?? [], expected.get(file));
        assert.equal(problems.length, 0, `${file}: ${problems.join('\n')}`);
      });
    }

    test('the server logged no errors', () => {
      assert.doesNotMatch(run.serverLog, /"level":(50|60)/, run.serverLog.slice(0, 4000));
    });
  });
}
