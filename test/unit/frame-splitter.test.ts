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

test('a frame callback that holds dispatch stops the chunk after that frame; release delivers the rest in order', () => {
  const seen: Buffer[] = [];
  const s: FrameSplitter = new FrameSplitter(
    {
      frame: (f) => {
        seen.push(f);
        s.hold();
      },
      oversized: () => assert.fail('oversized'),
      malformed: () => assert.fail('malformed'),
    },
    () => 1 << 20,
  );
  s.push(stream);
  assert.deepEqual(seen, [frames[0]]);
  s.push(frames[0]!);
  assert.deepEqual(seen, [frames[0]], 'a chunk pushed while held waits too');
  s.release();
  assert.deepEqual(seen, [frames[0], frames[1]]);
  s.release();
  s.release();
  s.release();
  assert.deepEqual(seen, [...frames, frames[0]]);
});

test('a held splitter keeps a partial frame across pushes and finishes it on release', () => {
  const { s, seen } = splitter();
  s.push(stream.subarray(0, frames[0]!.length + 20));
  s.hold();
  s.push(stream.subarray(frames[0]!.length + 20));
  assert.deepEqual(seen.frames, [frames[0]]);
  s.release();
  assert.deepEqual(seen.frames, frames);
});

test('midFrame is true from the first byte of a frame to its last, and for a frame being skipped', () => {
  const { s } = splitter(200);
  assert.equal(s.midFrame, false);
  s.push(frames[1]!.subarray(0, 3));
  assert.equal(s.midFrame, true, 'part of a header');
  s.push(frames[1]!.subarray(3, 50));
  assert.equal(s.midFrame, true, 'part of a body');
  s.push(frames[1]!.subarray(50));
  assert.equal(s.midFrame, false);
  const big = encode(message('Twrite', { tag: 9, fid: 1, offset: 0n, data: Buffer.alloc(1000, 1) }));
  s.push(big.subarray(0, 100));
  assert.equal(s.midFrame, true, 'an oversized frame being skipped');
  s.push(big.subarray(100));
  assert.equal(s.midFrame, false);
});

test('property: large frames cut anywhere, in pieces small and large, come out whole and intact', () => {
  const frameArb = fc
    .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 120_000 }), fc.integer({ min: 0, max: 255 }))
    .map(([tag, n, seed]) => encode(message('Twrite', { tag, fid: 1, offset: 0n, data: Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)) })));
  const cutArb = fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 16_000, max: 70_000 }));
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 4 }), fc.array(cutArb, { minLength: 1, maxLength: 12 }), (fs, cuts) => {
      const all = Buffer.concat(fs);
      const { s, seen } = splitter();
      let i = 0;
      for (let at = 0; at < all.length; ) {
        const n = cuts[i++ % cuts.length]!;
        s.push(all.subarray(at, at + n));
        at += n;
      }
      assert.deepEqual(seen.frames, fs);
      assert.equal(s.midFrame, false);
    }),
    { numRuns: 60 },
  );
});

test('a large frame in small pieces arrives whole (its buffer grows as the bytes come)', () => {
  const { s, seen } = splitter();
  const big = encode(message('Twrite', { tag: 3, fid: 1, offset: 0n, data: Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251)) }));
  for (let i = 0; i < big.length; i += 1000) s.push(big.subarray(i, i + 1000));
  assert.deepEqual(seen.frames, [big]);
});
