import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkIdRanges, mapIn, mapOut, parseIdRange } from '../../src/server/identity-policy.js';

test('an id range is GUEST:HOST:COUNT, within 32 bits, with a count of at least one', () => {
  assert.deepEqual(parseIdRange('0:100000:65536'), { guest: 0, host: 100000, count: 65536 });
  for (const bad of ['0:100000', '0:1:0', 'a:1:1', '-1:0:1', '0:4294967295:1', '1:2:3:4']) assert.throws(() => parseIdRange(bad), /is not GUEST:HOST:COUNT|out of range/, bad);
});

test('ranges that overlap on either side are refused', () => {
  assert.throws(() => checkIdRanges([{ guest: 0, host: 1000, count: 10 }, { guest: 5, host: 2000, count: 10 }], '--uid-map'), /overlap on the guest side/);
  assert.throws(() => checkIdRanges([{ guest: 0, host: 1000, count: 10 }, { guest: 100, host: 1005, count: 10 }], '--uid-map'), /overlap on the host side/);
  checkIdRanges([{ guest: 0, host: 1000, count: 10 }, { guest: 10, host: 1010, count: 10 }], '--uid-map');
});

test('ids map in and out through their range; without ranges every id is itself', () => {
  const map = [{ guest: 0, host: 100000, count: 65536 }, { guest: 70000, host: 5000, count: 1 }];
  assert.equal(mapIn(map, 0), 100000);
  assert.equal(mapIn(map, 65535), 165535);
  assert.equal(mapIn(map, 65536), null);
  assert.equal(mapIn(map, 70000), 5000);
  assert.equal(mapOut(map, 101000), 1000);
  assert.equal(mapOut(map, 0), null);
  assert.equal(mapOut(map, 5000), 70000);
  assert.equal(mapIn([], 1234), 1234);
  assert.equal(mapOut([], 1234), 1234);
});
