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

/** How far past `src` `dst` lies within a page: the copy is slow on AMD Zen from 1 to 31. */
const distance = (dst: number, src: number) => (((dst - src) % 4096) + 4096) % 4096;

test('a pooled frame is placed so that both of its copies run at aligned distances', async () => {
  const { addressInPage } = await import('../../src/backend/local/sys.js');
  const pool = new FramePool(1 << 20, 8, addressInPage);
  const first = pool.take((1 << 20) - 5, 11, 0);
  pool.give(first);
  for (let pageOffset = 0; pageOffset < 4096; pageOffset++) {
    const frame = pool.take((1 << 20) - 5, 11, pageOffset);
    assert.equal(frame.buffer, first.buffer, 'the same memory, placed again');
    assert.equal(frame.length, (1 << 20) - 5);
    assert.ok(frame.byteOffset + frame.length <= frame.buffer.byteLength);
    // The read into the frame: from the page cache (the file offset's place) to the data.
    const read = distance(addressInPage(frame.subarray(11)), pageOffset);
    assert.ok(read === 0 || read === 64, `file offset at ${pageOffset}: data ${read} bytes on`);
    // The send: from the frame's start to socket buffers that begin at a page's start.
    assert.ok(distance(0, addressInPage(frame)) >= 32 || addressInPage(frame) === 0, `frame at page offset ${addressInPage(frame)}`);
    pool.give(frame);
  }
});

test('frames are not placed when not asked, nor without the addon, nor when fresh', async () => {
  const { addressInPage } = await import('../../src/backend/local/sys.js');
  const placing = new FramePool(1 << 20, 8, addressInPage);
  const fresh = placing.take(4096 + 11, 11, 0);
  assert.equal(fresh.length, 4096 + 11);
  assert.equal(placing.lends(fresh), false);
  const unasked = placing.take(1 << 20);
  assert.equal(unasked.byteOffset, 0);
  const unplaced = new FramePool(1 << 20);
  const f = unplaced.take(1 << 20, 11, 100);
  assert.equal(f.byteOffset, 0);
  assert.equal(f.length, 1 << 20);
});
