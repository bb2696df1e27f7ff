import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { guestBench, STEPS, type GuestBenchResult } from '../bench/guest/guest-bench.js';
import { formatGuestTable } from '../bench/guest/guest-table.js';
import { formatCensus } from '../bench/guest/request-census.js';

// The in-guest rows of the benchmark (npm run bench:guest) kept from rotting: one guest boot at
// toy size (40 files, 2 MiB), virtfs alone (CI has no diod), asserting that every step ran and
// left what it should on the host, and that the table prints. Never a speed. The census proxy
// (--census) stands between guest and server, so it is checked too: every request relayed, counted.
describe('the in-guest bench at toy size', { timeout: 5 * 60_000 }, () => {
  let dir: string;
  let r: GuestBenchResult;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtfs-guest-bench-'));
    r = await guestBench({ files: 40, seqMiB: 2, runs: 1, msize: 1 << 20, cache: 'none', dir, diod: false, timeoutMs: 4 * 60_000, census: true, log: () => {} });
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every step ran in the guest and left whole trees, the full file and a clean git status on the host', () => {
    assert.deepEqual(r.problems, [], r.console.split('\n').slice(-30).join('\n'));
  });

  test('each step took measurable time in the guest and the server did its part of it', () => {
    for (const step of STEPS) {
      const [s] = r.samples.get(`virtfs ${step}`) ?? [];
      assert.ok(s, `${step}: no sample`);
      assert.ok(s.seconds > 0, `${step}: ${s.seconds} s`);
      assert.ok(s.serverCpu >= 0 && s.guestCpu >= 0, `${step}: server CPU ${s.serverCpu}, guest CPU ${s.guestCpu}`);
    }
    // Untarring 40 files is hundreds of requests, each emulated in the guest: neither side's CPU
    // over it can be nil.
    const tar = r.samples.get('virtfs tar-x')![0]!;
    assert.ok(tar.serverCpu > 0 && tar.guestCpu > 0, JSON.stringify(tar));
  });

  test('the guest mounted virtfs with the msize asked', () => {
    assert.match(r.mounts, /\/mnt 9p \S*msize=1048576/);
  });

  test('the table has a row per step, virtfs measured and diod not run', () => {
    const table = formatGuestTable(r);
    for (const step of STEPS) assert.match(table, new RegExp(`\\| ${step} +\\| [^|]+\\| +[\\d.]+ \\| +n/a \\| +n/a \\| +[\\d.]+ \\| +n/a \\| +n/a \\| +[\\d.]+ \\| +n/a \\|`), table);
  });

  test('the census counted each step\'s requests as the guest sent them', () => {
    const census = (step: string) => r.census.get(`virtfs ${step} 1`) ?? new Map();
    const tar = census('tar-x');
    assert.ok((tar.get('Tlcreate')?.requests ?? 0) >= r.tree.files, `Tlcreate: ${tar.get('Tlcreate')?.requests}`);
    assert.ok((tar.get('Twalk')?.errors.get('ENOENT') ?? 0) > 0, 'untarring looks names up before creating them');
    const write = census('seq-write').get('Twrite');
    assert.ok(write && write.requestBytes >= 2 << 20, `seq-write's Twrites carried ${write?.requestBytes} bytes`);
    const read = census('seq-read').get('Tread');
    assert.ok(read && read.replyBytes >= 2 << 20, `seq-read's Rreads carried ${read?.replyBytes} bytes`);
    for (const [step, c] of r.census) {
      for (const [type, e] of c) assert.ok(e.latencyNs > 0n && e.requests > 0, `${step} ${type}: ${e.requests} requests, ${e.latencyNs} ns`);
    }
    assert.match(formatCensus(r.census, ['virtfs']), /\| Twalk \| \d+ \| \d+ \| ENOENT \d+ \|/);
  });
});
