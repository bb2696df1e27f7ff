import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decode, encode, encodedSize, message } from '../../src/protocol/codec.js';
import { defs, type Message } from '../../src/protocol/messages.js';
import { DecodeError } from '../../src/protocol/wire.js';

// Expected bytes are built here field by field from the layouts in the reference (size[4]
// type[1] tag[2] then the body), independently of the codec under test.
class Bytes {
  private parts: Buffer[] = [];
  u8(v: number) {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  u16(v: number) {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    this.parts.push(b);
    return this;
  }
  s(v: string | Buffer) {
    const b = Buffer.from(v);
    return this.u16(b.length).raw(b);
  }
  qid(type: number, version: number, path: bigint) {
    return this.u8(type).u32(version).u64(path);
  }
  raw(b: Buffer) {
    this.parts.push(b);
    return this;
  }
  frame(type: number, tag: number): Buffer {
    const body = Buffer.concat(this.parts);
    const h = Buffer.alloc(7);
    h.writeUInt32LE(7 + body.length);
    h[4] = type;
    h.writeUInt16LE(tag, 5);
    return Buffer.concat([h, body]);
  }
}
const B = () => new Bytes();
const s = (v: string) => Buffer.from(v);
const Q = { type: 0x80, version: 7, path: 0x1122334455667788n };
const q = (b: Bytes) => b.qid(0x80, 7, 0x1122334455667788n);

type Vector = [string, Message, Buffer];
const vectors: Vector[] = [
  ['Tversion', message('Tversion', { tag: 0xffff, msize: 131072, version: '9P2000.L' }), B().u32(131072).s('9P2000.L').frame(100, 0xffff)],
  ['Rversion', message('Rversion', { tag: 0xffff, msize: 65536, version: 'unknown' }), B().u32(65536).s('unknown').frame(101, 0xffff)],
  ['Tauth', message('Tauth', { tag: 1, afid: 5, uname: 'u', aname: '', nUname: 1000 }), B().u32(5).s('u').s('').u32(1000).frame(102, 1)],
  ['Rauth', message('Rauth', { tag: 1, aqid: Q }), q(B()).frame(103, 1)],
  ['Tattach', message('Tattach', { tag: 2, fid: 0, afid: 0xffffffff, uname: 'nobody', aname: '', nUname: 0xffffffff }), B().u32(0).u32(0xffffffff).s('nobody').s('').u32(0xffffffff).frame(104, 2)],
  ['Rattach', message('Rattach', { tag: 2, qid: Q }), q(B()).frame(105, 2)],
  ['Rlerror', message('Rlerror', { tag: 3, ecode: 2 }), B().u32(2).frame(7, 3)],
  ['Tflush', message('Tflush', { tag: 4, oldtag: 3 }), B().u16(3).frame(108, 4)],
  ['Rflush', message('Rflush', { tag: 4 }), B().frame(109, 4)],
  ['Twalk 0 names', message('Twalk', { tag: 5, fid: 1, newfid: 2, wnames: [] }), B().u32(1).u32(2).u16(0).frame(110, 5)],
  ['Twalk 2 names', message('Twalk', { tag: 5, fid: 1, newfid: 1, wnames: [s('a'), s('bc')] }), B().u32(1).u32(1).u16(2).s('a').s('bc').frame(110, 5)],
  ['Rwalk', message('Rwalk', { tag: 5, qids: [Q, Q] }), q(q(B().u16(2))).frame(111, 5)],
  ['Tlopen', message('Tlopen', { tag: 6, fid: 3, flags: 0o304000 }), B().u32(3).u32(0o304000).frame(12, 6)],
  ['Rlopen', message('Rlopen', { tag: 6, qid: Q, iounit: 0 }), q(B()).u32(0).frame(13, 6)],
  ['Tlcreate', message('Tlcreate', { tag: 7, fid: 3, name: s('f'), flags: 0x8041, mode: 0o100644, gid: 1000 }), B().u32(3).s('f').u32(0x8041).u32(0o100644).u32(1000).frame(14, 7)],
  ['Rlcreate', message('Rlcreate', { tag: 7, qid: Q, iounit: 8192 }), q(B()).u32(8192).frame(15, 7)],
  ['Tsymlink', message('Tsymlink', { tag: 8, fid: 3, name: s('l'), target: s('/t'), gid: 5 }), B().u32(3).s('l').s('/t').u32(5).frame(16, 8)],
  ['Rsymlink', message('Rsymlink', { tag: 8, qid: Q }), q(B()).frame(17, 8)],
  ['Tmknod', message('Tmknod', { tag: 9, dfid: 3, name: s('p'), mode: 0o010644, major: 1, minor: 3, gid: 5 }), B().u32(3).s('p').u32(0o010644).u32(1).u32(3).u32(5).frame(18, 9)],
  ['Rmknod', message('Rmknod', { tag: 9, qid: Q }), q(B()).frame(19, 9)],
  ['Trename', message('Trename', { tag: 10, fid: 4, dfid: 5, name: s('n') }), B().u32(4).u32(5).s('n').frame(20, 10)],
  ['Rrename', message('Rrename', { tag: 10 }), B().frame(21, 10)],
  ['Treadlink', message('Treadlink', { tag: 11, fid: 4 }), B().u32(4).frame(22, 11)],
  ['Rreadlink', message('Rreadlink', { tag: 11, target: s('../x') }), B().s('../x').frame(23, 11)],
  ['Tgetattr', message('Tgetattr', { tag: 12, fid: 4, requestMask: 0x3fffn }), B().u32(4).u64(0x3fffn).frame(24, 12)],
  ['Tsetattr', message('Tsetattr', { tag: 13, fid: 4, valid: 0x68, mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 1n, atimeNsec: 2n, mtimeSec: 3n, mtimeNsec: 4n }),
    B().u32(4).u32(0x68).u32(0).u32(0).u32(0).u64(0n).u64(1n).u64(2n).u64(3n).u64(4n).frame(26, 13)],
  ['Rsetattr', message('Rsetattr', { tag: 13 }), B().frame(27, 13)],
  ['Txattrwalk', message('Txattrwalk', { tag: 14, fid: 4, newfid: 6, name: s('user.x') }), B().u32(4).u32(6).s('user.x').frame(30, 14)],
  ['Rxattrwalk', message('Rxattrwalk', { tag: 14, size: 5n }), B().u64(5n).frame(31, 14)],
  ['Txattrcreate', message('Txattrcreate', { tag: 15, fid: 6, name: s('user.x'), attrSize: 5n, flags: 1 }), B().u32(6).s('user.x').u64(5n).u32(1).frame(32, 15)],
  ['Rxattrcreate', message('Rxattrcreate', { tag: 15 }), B().frame(33, 15)],
  ['Treaddir', message('Treaddir', { tag: 16, fid: 4, offset: 0x7fffffffffffffffn, count: 131048 }), B().u32(4).u64(0x7fffffffffffffffn).u32(131048).frame(40, 16)],
  ['Rreaddir', message('Rreaddir', { tag: 16, data: s('entries') }), B().u32(7).raw(s('entries')).frame(41, 16)],
  ['Tfsync', message('Tfsync', { tag: 17, fid: 4, datasync: 1 }), B().u32(4).u32(1).frame(50, 17)],
  ['Rfsync', message('Rfsync', { tag: 17 }), B().frame(51, 17)],
  ['Tlock', message('Tlock', { tag: 18, fid: 4, lockType: 1, flags: 1, start: 10n, length: 0n, procId: 99, clientId: 'host' }),
    B().u32(4).u8(1).u32(1).u64(10n).u64(0n).u32(99).s('host').frame(52, 18)],
  ['Rlock', message('Rlock', { tag: 18, status: 1 }), B().u8(1).frame(53, 18)],
  ['Tgetlock', message('Tgetlock', { tag: 19, fid: 4, lockType: 0, start: 0n, length: 100n, procId: 7, clientId: 'c' }), B().u32(4).u8(0).u64(0n).u64(100n).u32(7).s('c').frame(54, 19)],
  ['Rgetlock', message('Rgetlock', { tag: 19, lockType: 2, start: 0n, length: 100n, procId: 7, clientId: 'c' }), B().u8(2).u64(0n).u64(100n).u32(7).s('c').frame(55, 19)],
  ['Tlink', message('Tlink', { tag: 20, dfid: 1, fid: 4, name: s('h') }), B().u32(1).u32(4).s('h').frame(70, 20)],
  ['Rlink', message('Rlink', { tag: 20 }), B().frame(71, 20)],
  ['Tmkdir', message('Tmkdir', { tag: 21, dfid: 1, name: s('d'), mode: 0o040755, gid: 0 }), B().u32(1).s('d').u32(0o040755).u32(0).frame(72, 21)],
  ['Rmkdir', message('Rmkdir', { tag: 21, qid: Q }), q(B()).frame(73, 21)],
  ['Trenameat', message('Trenameat', { tag: 22, oldDirFid: 1, oldName: s('a'), newDirFid: 2, newName: s('b') }), B().u32(1).s('a').u32(2).s('b').frame(74, 22)],
  ['Rrenameat', message('Rrenameat', { tag: 22 }), B().frame(75, 22)],
  ['Tunlinkat', message('Tunlinkat', { tag: 23, dfid: 1, name: s('d'), flags: 0x200 }), B().u32(1).s('d').u32(0x200).frame(76, 23)],
  ['Runlinkat', message('Runlinkat', { tag: 23 }), B().frame(77, 23)],
  ['Tread', message('Tread', { tag: 24, fid: 4, offset: 2n ** 32n + 7n, count: 4096 }), B().u32(4).u64(2n ** 32n + 7n).u32(4096).frame(116, 24)],
  ['Rread', message('Rread', { tag: 24, data: s('abc') }), B().u32(3).raw(s('abc')).frame(117, 24)],
  ['Twrite', message('Twrite', { tag: 25, fid: 4, offset: 2n ** 63n + 3n, data: s('xyz') }), B().u32(4).u64(2n ** 63n + 3n).u32(3).raw(s('xyz')).frame(118, 25)],
  ['Rwrite', message('Rwrite', { tag: 25, count: 3 }), B().u32(3).frame(119, 25)],
  ['Tclunk', message('Tclunk', { tag: 26, fid: 4 }), B().u32(4).frame(120, 26)],
  ['Rclunk', message('Rclunk', { tag: 26 }), B().frame(121, 26)],
  ['Tremove', message('Tremove', { tag: 27, fid: 4 }), B().u32(4).frame(122, 27)],
  ['Rremove', message('Rremove', { tag: 27 }), B().frame(123, 27)],
  ['Tstatfs', message('Tstatfs', { tag: 28, fid: 0 }), B().u32(0).frame(8, 28)],
  ['Rstatfs', message('Rstatfs', { tag: 28, fsType: 0xef53, bsize: 4096, blocks: 1n, bfree: 2n, bavail: 3n, files: 4n, ffree: 5n, fsid: 2n ** 64n - 1n, namelen: 255 }),
    B().u32(0xef53).u32(4096).u64(1n).u64(2n).u64(3n).u64(4n).u64(5n).u64(2n ** 64n - 1n).u32(255).frame(9, 28)],
];

const rgetattr = message('Rgetattr', {
  tag: 29, valid: 0x7ffn, qid: Q, mode: 0o100644, uid: 1, gid: 2, nlink: 3n, rdev: 4n, size: 2n ** 53n + 1n, blksize: 4096n, blocks: 8n,
  atimeSec: 10n, atimeNsec: 11n, mtimeSec: 12n, mtimeNsec: 13n, ctimeSec: 14n, ctimeNsec: 15n, btimeSec: 16n, btimeNsec: 17n, gen: 18n, dataVersion: 19n,
});
const rgetattrBytes = q(B().u64(0x7ffn)).u32(0o100644).u32(1).u32(2).u64(3n).u64(4n).u64(2n ** 53n + 1n).u64(4096n).u64(8n)
  .u64(10n).u64(11n).u64(12n).u64(13n).u64(14n).u64(15n).u64(16n).u64(17n).u64(18n).u64(19n).frame(25, 29);
vectors.push(['Rgetattr', rgetattr, rgetattrBytes]);

for (const [name, msg, bytes] of vectors) {
  test(`${name} encodes to the reference layout and decodes back`, () => {
    assert.deepEqual(encode(msg), bytes);
    assert.deepEqual(decode(bytes), msg);
    assert.equal(encodedSize(msg), bytes.length);
  });
}

test('every message type has a vector', () => {
  const covered = new Set(vectors.map(([, m]) => m.type));
  const missing = Object.values(defs).filter((d) => d.name !== 'Tlerror' && !covered.has(d.type)).map((d) => d.name);
  assert.deepEqual(missing, []);
});

test('Rgetattr\'s body is exactly 153 bytes', () => {
  assert.equal(encode(rgetattr).length - 7, 153);
});

test('64-bit fields keep every bit: 2^53+1, 2^63+3 and 2^64-1 survive', () => {
  for (const v of [2n ** 53n + 1n, 2n ** 63n + 3n, 2n ** 64n - 1n, 2n ** 32n + 7n]) {
    const m = message('Tread', { tag: 1, fid: 1, offset: v, count: 1 });
    assert.equal((decode(encode(m)) as Message<'Tread'>).offset, v);
  }
});

test('a decoded Twrite payload is a view of the frame, not a copy', () => {
  const frame = encode(message('Twrite', { tag: 1, fid: 1, offset: 0n, data: s('payload') }));
  const m = decode(frame) as Message<'Twrite'>;
  assert.equal(m.data.buffer, frame.buffer);
  assert.equal(m.data.byteOffset, frame.byteOffset + 7 + 4 + 8 + 4);
});

test('a body cut at any byte is a DecodeError', () => {
  for (const [, , bytes] of vectors) {
    for (let cut = 7; cut < bytes.length; cut++) {
      const f = Buffer.from(bytes.subarray(0, cut));
      f.writeUInt32LE(cut, 0);
      assert.throws(() => decode(f), DecodeError);
    }
  }
});

test('trailing bytes, a wrong size field and an unknown type are DecodeErrors', () => {
  const good = encode(message('Tclunk', { tag: 1, fid: 1 }));
  const trailing = Buffer.concat([good, Buffer.from([0])]);
  trailing.writeUInt32LE(trailing.length, 0);
  assert.throws(() => decode(trailing), DecodeError);
  const wrongSize = Buffer.from(good);
  wrongSize.writeUInt32LE(99, 0);
  assert.throws(() => decode(wrongSize), DecodeError);
  const unknown = Buffer.from(good);
  unknown[4] = 99;
  assert.throws(() => decode(unknown), DecodeError);
});

test('a Twalk claiming 17 names is a DecodeError before any is read', () => {
  const f = B().u32(0).u32(1).u16(17).frame(110, 1);
  assert.throws(() => decode(f), /17 items exceeds/);
});

test('a string length running past the end is a DecodeError', () => {
  const f = B().u32(0).u32(1).u16(1).u16(500).raw(s('ab')).frame(110, 1);
  assert.throws(() => decode(f), DecodeError);
});

test('property: arbitrary bytes either decode or raise DecodeError, nothing else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.constantFrom(...Object.values(defs).map((d) => d.type)), (body, type) => {
      const f = Buffer.alloc(7 + body.length);
      f.writeUInt32LE(f.length, 0);
      f[4] = type;
      Buffer.from(body).copy(f, 7);
      try {
        decode(f);
      } catch (e) {
        return e instanceof DecodeError;
      }
      return true;
    }),
    { numRuns: 3000 },
  );
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const bytes = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
// fast-check records have a null prototype; the codec makes plain objects.
const qidArb = fc.record({ type: fc.integer({ min: 0, max: 255 }), version: u32, path: u64 }).map((x) => ({ ...x }));

test('property: Twalk, Twrite, Tsetattr, Rgetattr, Tlock and Rwalk round-trip exactly', () => {
  const arbs: fc.Arbitrary<Message>[] = [
    fc.record({ tag: u16, fid: u32, newfid: u32, wnames: fc.array(bytes, { maxLength: 16 }) }).map((f) => message('Twalk', f)),
    fc.record({ tag: u16, fid: u32, offset: u64, data: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) }).map((f) => message('Twrite', f)),
    fc.record({ tag: u16, fid: u32, valid: u32, mode: u32, uid: u32, gid: u32, size: u64, atimeSec: u64, atimeNsec: u64, mtimeSec: u64, mtimeNsec: u64 }).map((f) => message('Tsetattr', f)),
    fc.record({ tag: u16, qids: fc.array(qidArb, { maxLength: 16 }) }).map((f) => message('Rwalk', f)),
    fc.record({ tag: u16, fid: u32, lockType: fc.integer({ min: 0, max: 255 }), flags: u32, start: u64, length: u64, procId: u32, clientId: fc.string() }).map((f) => message('Tlock', f)),
    fc.record({
      tag: u16, valid: u64, qid: qidArb, mode: u32, uid: u32, gid: u32, nlink: u64, rdev: u64, size: u64, blksize: u64, blocks: u64,
      atimeSec: u64, atimeNsec: u64, mtimeSec: u64, mtimeNsec: u64, ctimeSec: u64, ctimeNsec: u64, btimeSec: u64, btimeNsec: u64, gen: u64, dataVersion: u64,
    }).map((f) => message('Rgetattr', f)),
  ];
  fc.assert(
    fc.property(fc.oneof(...arbs), (m) => {
      const enc = encode(m);
      assert.equal(encodedSize(m), enc.length);
      assert.deepEqual(decode(enc), m);
    }),
    { numRuns: 1000 },
  );
});

