import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramePool } from '../../src/server/frame-pool.js';

test('a large frame given back is lent again; small ones are never pooled', () => {
  const pool = new FramePool(1024);
  const a = pool.take(1000);
  assert.ok(pool.lends(a));
  pool.give(a.subarray(0, 10));
  const b = pool.take(900);
  assert.equal(b.buffer, a.buffer, 'the same memory, lent again');
  const small = pool.take(100);
  assert.equal(pool.lends(small), false);
  assert.equal(small.length, 100);
});

test('a frame given back twice is lent to one reply only', () => {
  const pool = new FramePool(1024);
  const a = pool.take(1000);
  pool.give(a);
  pool.give(a);
  const b = pool.take(1000);
  const c = pool.take(1000);
  assert.notEqual(b.buffer, c.buffer);
});

test('at most `keep` frames wait unused', () => {
  const pool = new FramePool(1024, 2);
  const lent = [pool.take(1000), pool.take(1000), pool.take(1000)];
  for (const f of lent) pool.give(f);
  const again = [pool.take(1000), pool.take(1000), pool.take(1000)];
  const reused = again.filter((f) => lent.some((l) => l.buffer === f.buffer));
  assert.equal(reused.length, 2);
});
