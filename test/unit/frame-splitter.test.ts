import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encode, message } from '../../src/protocol/codec.js';
import { FrameSplitter } from '../../src/protocol/frame-splitter.js';

interface Seen {
  frames: Buffer[];
  oversized: [number, number, number][];
  malformed: number[];
}

function splitter(max = 1 << 20): { s: FrameSplitter; seen: Seen } {
  const seen: Seen = { frames: [], oversized: [], malformed: [] };
  const s = new FrameSplitter(
    {
      frame: (f) => seen.frames.push(f),
      oversized: (type, tag, size) => seen.oversized.push([type, tag, size]),
      malformed: (size) => seen.malformed.push(size),
    },
    () => max,
  );
  return { s, seen };
}

const frames = [
  encode(message('Tclunk', { tag: 1, fid: 7 })),
  encode(message('Twrite', { tag: 2, fid: 1, offset: 0n, data: Buffer.alloc(100, 9) })),
  encode(message('Tversion', { tag: 0xffff, msize: 8192, version: '9P2000.L' })),
];
const stream = Buffer.concat(frames);

test('frames merged in one chunk come out separately, as views of the chunk', () => {
  const { s, seen } = splitter();
  s.push(stream);
  assert.deepEqual(seen.frames, frames);
  assert.equal(seen.frames[1]!.buffer, stream.buffer);
});

test('a stream cut at any byte position yields the same frames', () => {
  for (let cut = 1; cut < stream.length; cut++) {
    const { s, seen } = splitter();
    s.push(stream.subarray(0, cut));
    s.push(stream.subarray(cut));
    assert.deepEqual(seen.frames, frames, `cut at ${cut}`);
  }
});

test('one byte per chunk yields the same frames', () => {
  const { s, seen } = splitter();
  for (let i = 0; i < stream.length; i++) s.push(stream.subarray(i, i + 1));
  assert.deepEqual(seen.frames, frames);
});

test('an oversized frame is reported once by type and tag, skipped, and what follows is intact', () => {
  const { s, seen } = splitter(200);
  const big = encode(message('Twrite', { tag: 9, fid: 1, offset: 0n, data: Buffer.alloc(1000, 1) }));
  const all = Buffer.concat([frames[0]!, big, frames[2]!]);
  for (let i = 0; i < all.length; i += 37) s.push(all.subarray(i, i + 37));
  assert.deepEqual(seen.oversized, [[118, 9, big.length]]);
  assert.deepEqual(seen.frames, [frames[0], frames[2]]);
});

test('a size field below 7 is reported as malformed and nothing more is emitted', () => {
  const { s, seen } = splitter();
  s.push(Buffer.concat([Buffer.from([3, 0, 0, 0, 1, 2, 3]), frames[0]!]));
  assert.deepEqual(seen.malformed, [3]);
  assert.equal(seen.frames.length, 0);
});

test('property: any chunking of any frame sequence yields exactly those frames in order', () => {
  const frameArb = fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 300 }))
    .map(([tag, data]) => encode(message('Twrite', { tag, fid: 1, offset: 0n, data: Buffer.from(data) })));
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (fs, cuts) => {
      const all = Buffer.concat(fs);
      const { s, seen } = splitter();
      let at = 0;
      let i = 0;
      while (at < all.length) {
        const n = cuts[i++ % cuts.length]!;
        s.push(all.subarray(at, at + n));
        at += n;
      }
      assert.deepEqual(seen.frames, fs);
    }),
    { numRuns: 500 },
  );
});
