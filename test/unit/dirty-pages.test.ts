import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cgroupDomain,
  DirtyPageGauge,
  fieldOf,
  freerunCeiling,
  headroomOf,
  KernelTextFile,
  machineDomain,
  memcgsOf,
  readHeadroom,
  REFRESH_MS,
  RETRY_MS,
  STALE_MS,
} from '../../src/backend/local/dirty-pages.js';
import { openFdCount } from '../../src/backend/local/sys.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const defaults = { ratio: 20, backgroundRatio: 10, bytes: 0, backgroundBytes: 0 };

test('the freerun ceiling is halfway between the background and foreground thresholds, as the kernel computes them', () => {
  assert.equal(freerunCeiling(10 * GiB, defaults), 1.5 * GiB);
  assert.equal(freerunCeiling(10 * GiB, { ...defaults, bytes: 400 * MiB, backgroundBytes: 100 * MiB }), 250 * MiB, '*_bytes override the ratios');
  assert.equal(freerunCeiling(10 * GiB, { ...defaults, backgroundRatio: 30 }), 1.5 * GiB, 'a background threshold above the foreground one is half of it');
  assert.equal(headroomOf([{ dirtyable: 10 * GiB, dirty: 700 * MiB }], defaults), 0.75 * GiB - 700 * MiB);
  assert.ok(headroomOf([{ dirtyable: 10 * GiB, dirty: 800 * MiB }], defaults) < 0, 'past half the ceiling');
  assert.equal(headroomOf([{ dirtyable: 10 * GiB, dirty: 0 }, { dirtyable: 100 * MiB, dirty: 2 * MiB }], defaults), 5.5 * MiB, 'the smallest domain\'s');
});

test('domains are read from /proc/vmstat and the memory cgroup files of either version', () => {
  const vmstat = 'nr_free_pages 1000\nnr_inactive_file 200\nnr_active_file 300\nnr_dirty 5\nnr_writeback 2\nnr_other 9\n';
  assert.deepEqual(machineDomain(vmstat), { dirtyable: 1500 * 4096, dirty: 7 * 4096 });
  assert.equal(machineDomain('nr_free_pages 1\n'), null, 'a field missing: no reading');
  assert.deepEqual(cgroupDomain(GiB, 600 * MiB, 'file 100\nfile_dirty 10\nfile_writeback 5\n', true), { dirtyable: GiB - 600 * MiB + 100, dirty: 15 });
  assert.deepEqual(cgroupDomain(GiB, 2 * GiB, 'cache 100\ndirty 10\nwriteback 5\n', false), { dirtyable: 100, dirty: 15 }, 'over the limit: only its file pages');
  assert.equal(cgroupDomain(Infinity, 0, '', true), null, 'memory.max "max"');
  assert.equal(cgroupDomain(9223372036854771712, 0, '', false), null, 'v1 without a limit');
  const stat = 'total_dirty 7\ndirty 3\nnr_dirty_threshold 9\nwriteback 1';
  assert.deepEqual([fieldOf(stat, 'dirty'), fieldOf(stat, 'writeback'), fieldOf(stat, 'dirty_threshold'), fieldOf(stat, 'nr_dirty')], [3, 1, undefined, undefined], 'a whole name at the start of a line');
  assert.deepEqual(memcgsOf('0::/a/b\n', '/cg'), [{ dir: '/cg/a/b', v2: true }, { dir: '/cg/a', v2: true }], 'v2: the cgroup and its ancestors');
  assert.deepEqual(memcgsOf('0::/\n'), [], 'v2 root: none');
  assert.deepEqual(memcgsOf('4:memory:/x/y\n1:cpu:/\n0::/\n', '/cg'), [{ dir: '/cg/memory/x/y', v2: false }], 'v1 (or hybrid): the memory controller\'s cgroup');
});

test('this machine gives a reading, from files held open and read again', () => {
  assert.ok(Number.isFinite(readHeadroom()));
  const fds = openFdCount();
  for (let i = 0; i < 50; i++) assert.ok(Number.isFinite(readHeadroom()));
  assert.equal(openFdCount(), fds, 'no descriptor opened per reading');
});

test('a kernel text file read again shows its new contents, however long', () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-kernel-text-'));
  try {
    const path = join(dir, 'f');
    writeFileSync(path, '1\n');
    const f = new KernelTextFile(path);
    assert.equal(f.number(), 1);
    const long = `${'x'.repeat(40_000)}\n`;
    writeFileSync(path, long);
    assert.equal(f.text(), long, 'read to its end from offset 0, past the first buffer');
    writeFileSync(path, 'max\n');
    assert.equal(f.number(), Infinity);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const vmstat = new KernelTextFile('/proc/vmstat');
  const knob = new KernelTextFile('/proc/sys/vm/dirty_ratio');
  for (let i = 0; i < 3; i++) {
    assert.match(vmstat.text(), /^nr_dirty \d+$/m, 'procfs made anew at each read');
    assert.equal(knob.text(), readFileSync('/proc/sys/vm/dirty_ratio', 'latin1'), 'a sysctl read again from offset 0');
  }
});

/** A gauge on a fake clock whose readings come from `readings` in turn (a thrown one: an error). */
function fakeGauge(readings: (number | Error)[]) {
  const s = { now: 0, reads: 0, applied: [] as boolean[] };
  const gauge = new DirtyPageGauge(
    () => {
      s.reads++;
      const r = readings.shift();
      if (r === undefined) throw new Error('no reading left');
      if (r instanceof Error) throw r;
      return r;
    },
    (calm) => void s.applied.push(calm),
    () => s.now,
  );
  return { gauge, s };
}

test('the gauge reads only when writes come, keeps a recent reading, and takes a new one when it is old', () => {
  const { gauge, s } = fakeGauge([GiB, GiB, 0, new Error('no /proc')]);
  assert.deepEqual(s.applied, [], 'off until the first write');
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [1, [true]], 'read by the first write, before it is placed');
  s.now += REFRESH_MS - 1;
  gauge.poke(4096);
  assert.equal(s.reads, 1, 'recent enough');
  s.now += 1;
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [2, [true]], 'refreshed, still calm');
  s.now += REFRESH_MS;
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [3, [true, false]], 'no headroom: off');
  s.now += REFRESH_MS;
  gauge.poke();
  assert.deepEqual([s.reads, s.applied], [4, [true, false]], 'a failed reading leaves writes off');
});

test('writes spend the headroom: once the server has written it, inline writes stop until a new reading, taken no more often than RETRY_MS', () => {
  const { gauge, s } = fakeGauge([3 * 4096, 2 * 4096, 0, 2 * 4096]);
  gauge.poke(4096);
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [1, [true]], 'within the headroom, however recent the reading');
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [1, [true, false]], 'spent just after a reading: off, not read again at once');
  s.now += RETRY_MS;
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [2, [true, false, true]], 'read again: calm for what the new reading left after this write');
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [2, [true, false, true, false]], 'spent again');
  s.now += RETRY_MS - 1;
  gauge.poke(4096);
  assert.equal(s.reads, 2, 'not before RETRY_MS');
  s.now += 1;
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [3, [true, false, true, false]], 'the reading found none');
  s.now += RETRY_MS;
  gauge.poke(4096);
  assert.deepEqual([s.reads, s.applied], [4, [true, false, true, false, true]]);
});

test('a calm reading left alone expires: inline writes go off after STALE_MS without another write', async () => {
  const applied: boolean[] = [];
  const gauge = new DirtyPageGauge(() => GiB, (calm) => void applied.push(calm));
  gauge.poke();
  assert.deepEqual(applied, [true]);
  await new Promise((r) => setTimeout(r, STALE_MS + 50));
  assert.deepEqual(applied, [true, false]);
});
