import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupDomain, DirtyPageGauge, freerunCeiling, headroomOf, machineDomain, memcgsOf, parseFields, readHeadroom, REFRESH_MS, STALE_MS } from '../../src/backend/local/dirty-pages.js';

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
  const vmstat = parseFields('nr_free_pages 1000\nnr_inactive_file 200\nnr_active_file 300\nnr_dirty 5\nnr_writeback 2\nnr_other 9\n');
  assert.deepEqual(machineDomain(vmstat), { dirtyable: 1500 * 4096, dirty: 7 * 4096 });
  assert.equal(machineDomain(parseFields('nr_free_pages 1\n')), null, 'a field missing: no reading');
  assert.deepEqual(cgroupDomain(GiB, 600 * MiB, parseFields('file 100\nfile_dirty 10\nfile_writeback 5\n'), true), { dirtyable: GiB - 600 * MiB + 100, dirty: 15 });
  assert.deepEqual(cgroupDomain(GiB, 2 * GiB, parseFields('cache 100\ndirty 10\nwriteback 5\n'), false), { dirtyable: 100, dirty: 15 }, 'over the limit: only its file pages');
  assert.equal(cgroupDomain(Infinity, 0, new Map(), true), null, 'memory.max "max"');
  assert.equal(cgroupDomain(9223372036854771712, 0, new Map(), false), null, 'v1 without a limit');
  assert.deepEqual(memcgsOf('0::/a/b\n', '/cg'), [{ dir: '/cg/a/b', v2: true }, { dir: '/cg/a', v2: true }], 'v2: the cgroup and its ancestors');
  assert.deepEqual(memcgsOf('0::/\n'), [], 'v2 root: none');
  assert.deepEqual(memcgsOf('4:memory:/x/y\n1:cpu:/\n0::/\n', '/cg'), [{ dir: '/cg/memory/x/y', v2: false }], 'v1 (or hybrid): the memory controller\'s cgroup');
});

test('this machine gives a reading', async () => {
  assert.ok(Number.isFinite(await readHeadroom()));
});

test('the gauge reads only when writes come, keeps a recent reading, and drops a stale one until the next arrives', async () => {
  let now = 0;
  let reads = 0;
  let answer: (headroom: number) => void = () => {};
  const applied: boolean[] = [];
  const record = (calm: boolean): void => void applied.push(calm);
  const gauge = new DirtyPageGauge(
    () => {
      reads++;
      return new Promise((r) => (answer = r));
    },
    record,
    () => now,
  );
  gauge.poke();
  gauge.poke();
  assert.equal(reads, 1, 'one reading at a time');
  assert.deepEqual(applied, [], 'off until the first reading');
  answer(GiB);
  await Promise.resolve();
  assert.deepEqual(applied, [true]);
  now += REFRESH_MS - 1;
  gauge.poke(4096);
  assert.equal(reads, 1, 'recent enough');
  now += 1;
  gauge.poke(4096);
  assert.equal(reads, 2, 'refreshed');
  assert.deepEqual(applied, [true], 'the old reading holds meanwhile');
  answer(0);
  await Promise.resolve();
  assert.deepEqual(applied, [true, false], 'no headroom: off');
  answer = () => {};
  now += STALE_MS;
  gauge.poke();
  assert.equal(reads, 3);
  assert.deepEqual(applied, [true, false], 'already off');
  const failing = new DirtyPageGauge(() => Promise.reject(new Error('no /proc')), record, () => now);
  failing.poke();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(applied, [true, false], 'a failed reading leaves writes off');
});

test('a stale reading turns inline writes off at once', async () => {
  let now = 0;
  const applied: boolean[] = [];
  let answer: (headroom: number) => void = () => {};
  const gauge = new DirtyPageGauge(() => new Promise((r) => (answer = r)), (calm) => void applied.push(calm), () => now);
  gauge.poke();
  answer(GiB);
  await Promise.resolve();
  now += STALE_MS;
  gauge.poke();
  assert.deepEqual(applied, [true, false], 'off before the new reading arrives');
  answer(GiB);
  await Promise.resolve();
  assert.deepEqual(applied, [true, false, true]);
});

test('writes spend the headroom: once the server has written it, inline writes stop until a new reading', async () => {
  let reads = 0;
  const applied: boolean[] = [];
  let answer: (headroom: number) => void = () => {};
  const gauge = new DirtyPageGauge(
    () => {
      reads++;
      return new Promise((r) => (answer = r));
    },
    (calm) => void applied.push(calm),
    () => 0,
  );
  gauge.poke();
  answer(3 * 4096);
  await Promise.resolve();
  gauge.poke(4096);
  gauge.poke(4096);
  assert.deepEqual([reads, applied], [1, [true]], 'within the headroom, however recent the reading');
  gauge.poke(4096);
  assert.deepEqual([reads, applied], [2, [true, false]], 'spent: off, and read again');
  answer(4096);
  await Promise.resolve();
  assert.deepEqual(applied, [true, false, true]);
});

test('a calm reading left alone expires: inline writes go off after STALE_MS without another write', async () => {
  const applied: boolean[] = [];
  const gauge = new DirtyPageGauge(() => Promise.resolve(GiB), (calm) => void applied.push(calm));
  gauge.poke();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(applied, [true]);
  await new Promise((r) => setTimeout(r, STALE_MS + 50));
  assert.deepEqual(applied, [true, false]);
});
