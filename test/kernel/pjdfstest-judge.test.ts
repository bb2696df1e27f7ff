import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { expectedFailures, judge, parseExpectedFailures } from './conformance.js';
import { parsePjdOutput, SUMMARY_AWK, type FileResult } from './pjdfstest-guest.js';

// The pjdfstest run takes minutes; these check in milliseconds that its verdicts can fail: the
// guest's summary of TAP, the host's parsing of it, and the judgement against docs/conformance.md.

/** The guest's summary program, run by the same busybox awk the guest has. */
const summarise = (tap: string, rc = 0) =>
  execFileSync('busybox', ['awk', '-v', 'f=x/00.t', '-v', `rc=${rc}`, '-v', 'secs=3', SUMMARY_AWK], { input: tap, encoding: 'utf8' });

const result = (over: Partial<FileResult> = {}): FileResult => ({
  file: 'x/00.t', planned: 3, passed: 3, failed: 0, todo: 0, inOrder: true, exitCode: 0, seconds: 1, notOk: [], stderr: [], ...over,
});

describe('pjdfstest results: summary, parsing and judgement', () => {
  test('a clean TAP run is summarised as all passed, in order', () => {
    assert.equal(summarise('1..3\nok 1\nok 2\nok 3\n'), 'PJD x/00.t 3 3 0 0 1 0 3\n');
  });

  test('failures are listed, TODO results counted apart, and a missing number breaks the order', () => {
    const out = summarise('1..4\nok 1\nnot ok 2 - tried x, expected 0, got EPERM\nnot ok 3 # TODO known\nok 5\n');
    assert.equal(out, 'PJDNOTOK x/00.t not ok 2 - tried x, expected 0, got EPERM\nPJD x/00.t 4 2 1 1 0 0 3\n');
  });

  test('an unnumbered "not ok" (the suite could not start) is a failure out of order', () => {
    assert.equal(summarise('not ok - could not find pjdfstest app\n', 1), 'PJDNOTOK x/00.t not ok - could not find pjdfstest app\nPJD x/00.t -1 0 1 0 0 1 3\n');
  });

  test('the host reads summaries out of a noisy console, with their failures and stderr', () => {
    const { results, stderr } = parsePjdOutput('[ 1.0] noise\r\nPJDNOTOK a/01.t not ok 2 - x\r\nPJD a/01.t 2 1 1 0 1 0 4\r\nPJDERR b/02.t sh: foo: not found\r\n');
    assert.deepEqual(results.get('a/01.t'), result({ file: 'a/01.t', planned: 2, passed: 1, failed: 1, seconds: 4, notOk: ['not ok 2 - x'] }));
    assert.equal(results.has('b/02.t'), false);
    assert.deepEqual(stderr.get('b/02.t'), ['sh: foo: not found']);
  });

  test('a complete, clean file passes', () => {
    assert.deepEqual(judge('x/00.t', result(), [], undefined), []);
  });

  test('every way a file can go wrong is a problem', () => {
    const fail = result({ passed: 2, failed: 1, notOk: ['not ok 2 - x'] });
    assert.equal(judge('x/00.t', undefined, [], undefined).length, 1, 'never reported');
    assert.equal(judge('x/00.t', fail, [], undefined).length, 1, 'an undocumented failure');
    assert.equal(judge('x/00.t', result({ exitCode: 137 }), [], undefined).length, 1, 'killed');
    assert.equal(judge('x/00.t', result({ passed: 2 }), [], undefined).length, 1, 'a result missing');
    assert.equal(judge('x/00.t', result({ inOrder: false }), [], undefined).length, 1, 'out of order');
    assert.equal(judge('x/00.t', result({ planned: -1, passed: 0 }), [], undefined).length > 0, true, 'no plan');
    assert.equal(judge('x/00.t', result(), ['sh: openssl: not found'], undefined).length, 1, 'stderr');
  });

  test('a documented file must fail exactly its documented cases', () => {
    const doc = { file: 'x/00.t', cases: [2] };
    assert.deepEqual(judge('x/00.t', result({ passed: 2, failed: 1, notOk: ['not ok 2 - x'] }), [], doc), []);
    assert.equal(judge('x/00.t', result({ passed: 1, failed: 2, notOk: ['not ok 2 - x', 'not ok 3 - y'] }), [], doc).length, 1, 'a new failure');
    assert.equal(judge('x/00.t', result({ passed: 2, failed: 1, notOk: ['not ok 3 - y'] }), [], doc).length, 2, 'a different failure');
    assert.equal(judge('x/00.t', result(), [], doc).length, 1, 'the documented case passes');
  });

  test('docs/conformance.md parses, and malformed rows are errors', () => {
    assert.deepEqual(expectedFailures().get('utimensat/08.t')?.cases, [5, 6]);
    const table = (row: string) => `## Expected failures\n\n| File | Failing cases |\n|---|---|\n${row}\n`;
    assert.throws(() => parseExpectedFailures(table('| `a/01.t` | 5, six | why |')), /not numbers/);
    assert.throws(() => parseExpectedFailures(table('| `a/01.t` | 5 |\n| `a/01.t` | 6 |')), /twice/);
    assert.throws(() => parseExpectedFailures('## Results\n\n| `a/01.t` | 5 |\n'), /one "## Expected failures" section, has 0/);
    assert.equal(parseExpectedFailures(table('')).size, 0, 'an empty table allows no failures');
  });
});
