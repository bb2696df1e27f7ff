import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bench } from '../bench/bench.js';
import { formatFidMemory } from '../bench/fid-memory.js';
import { rows } from '../bench/rows.js';
import { formatTable } from '../bench/table.js';

// The benchmark (test/bench/bench.ts) kept from rotting: every row for a moment, against virtfs
// alone (CI has no diod), asserting that each did work and the table prints, never a speed.
test('every bench row, run briefly against virtfs, does work and prints its table row', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-bench-'));
  try {
    const { rows: results } = await bench({
      runs: 1, seconds: 0.3, warmup: 0.1, connections: 2, msize: 1 << 20, rows,
      dir, seqSize: 4 << 20, diod: false, log: () => {},
    });
    assert.deepEqual(results.map((r) => r.row.name), rows.map((r) => r.name));
    const table = formatTable(results);
    for (const r of results) {
      assert.ok(typeof r.virtfs !== 'string', `${r.row.name}: virtfs failed: ${String(r.virtfs)}`);
      assert.ok(r.virtfs.rate > 0 && r.virtfs.cpuPerUnit > 0, `${r.row.name}: no work measured`);
      assert.ok(typeof r.limit !== 'string' && r.limit.rate > 0, `${r.row.name}: the limit did no work`);
      assert.equal(r.diod, 'not run (--no-diod)');
      assert.match(table, new RegExp(`\\| ${r.row.name} +\\| ${r.row.unit} +\\| +\\d+ \\| +n/a \\|`));
      if (r.row.floor) {
        assert.ok(r.floor && typeof r.floor !== 'string' && r.floor.rate > 0, `${r.row.name}: the socket floor did no work: ${String(r.floor)}`);
        assert.match(table, new RegExp(`- ${r.row.name}, socket floor .*: [\\d.]+ ${r.row.unit}/s at [\\d.]+ µs per ${r.row.unit}`));
      }
    }
    assert.ok(rows.some((r) => r.floor), 'no row has a socket floor');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The memory table (64 connections × 1,000 fids in `npm run bench`), at toy size.
test('the memory measurement holds fids on several connections and reads the peak RSS', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-bench-'));
  try {
    const load = { connections: 3, fidsPerConnection: 20 };
    const { memory } = await bench({
      runs: 1, seconds: 1, warmup: 0.2, connections: 1, msize: 1 << 20, rows: [],
      dir, seqSize: 1 << 20, diod: false, fidMemory: load, log: () => {},
    });
    assert.ok(memory && typeof memory.virtfs !== 'string', `virtfs failed: ${String(memory?.virtfs)}`);
    assert.ok(memory.virtfs.before > 0 && memory.virtfs.peak >= memory.virtfs.before);
    assert.equal(memory.diod, 'not run (--no-diod)');
    assert.match(formatFidMemory(load, memory.virtfs, memory.diod), /\| 3 connections × 20 fids \| [\d.]+ MiB \| [\d.]+ MiB \| n\/a \| n\/a \| n\/a \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// `npm run bench -- ...`: a mistyped option gets the usage, not a stack trace.
test('the bench command answers --help with its usage, and a bad option with the usage and status 2', () => {
  const cli = join(import.meta.dirname, '../bench/bench.js');
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: npm run bench -- \[options\]/);
  for (const bad of [['--bogus'], ['--runs', 'three'], ['--seconds=-1'], ['--seconds', '-1'], ['--rows', 'stat,nope'], ['--msize', '1X']]) {
    const r = spawnSync(process.execPath, [cli, ...bad], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${bad.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^bench: [^]+?\nusage: npm run bench/, bad.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${bad.join(' ')}: a stack trace`);
  }
});

// The one-at-a-time round trips (test/bench/round-trip.ts), briefly, against virtfs and the Node
// floor (CI has no diod): both requests measured on both, never a speed.
test('round-trip measures each request one at a time on virtfs and on the Node floor', { timeout: 60_000 }, () => {
  const cli = join(import.meta.dirname, '../bench/round-trip.js');
  const r = spawnSync(process.execPath, [cli, '--seconds', '1', '--runs', '1', '--no-diod', '--sleep-us', '100'], { encoding: 'utf8', timeout: 50_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /one request at a time, 100 µs asleep between/);
  for (const request of ['getattr', 'clunk-unknown']) {
    assert.match(r.stdout, new RegExp(`\\| ${request} \\| [\\d.]+ µs \\| [\\d.]+ µs \\| [\\d.]+ µs \\| [\\d.]+ µs \\|`), r.stdout);
  }
  const bad = spawnSync(process.execPath, [cli, '--think-us', '5', '--sleep-us', '5'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /one or the other\nusage: /);
});
