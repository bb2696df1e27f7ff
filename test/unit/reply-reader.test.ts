import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ReplyReader } from '../bench/reply-reader.js';
import { encode, message } from '../../src/protocol/codec.js';
import { MessageType, type Message } from '../../src/protocol/messages.js';

// The bench's reply stream: large Rread data dropped (length kept), everything else decoded whole.
test('property: any chunking of any replies yields those replies, large reads by length only', () => {
  const replyArb = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 0xfffe }), fc.integer({ min: 0, max: 70_000 })).map(([tag, n]) => message('Rread', { tag, data: Buffer.alloc(n, tag & 0xff) })),
    fc.integer({ min: 0, max: 0xfffe }).map((tag) => message('Rlerror', { tag, ecode: 2 })),
    fc.integer({ min: 0, max: 0xfffe }).map((tag) => message('Rclunk', { tag })),
  );
  const cutArb = fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1_000, max: 70_000 }));
  fc.assert(
    fc.property(fc.array(replyArb, { minLength: 1, maxLength: 6 }), fc.array(cutArb, { minLength: 1, maxLength: 10 }), (replies, cuts) => {
      const stream = Buffer.concat(replies.map((m) => encode(m as Message)));
      const got: Message[] = [];
      const reader = new ReplyReader((m) => got.push(m));
      let i = 0;
      for (let at = 0; at < stream.length; ) {
        const n = cuts[i++ % cuts.length]!;
        reader.push(stream.subarray(at, at + n));
        at += n;
      }
      assert.equal(got.length, replies.length);
      for (const [k, want] of replies.entries()) {
        const m = got[k]!;
        assert.equal(m.type, want.type);
        assert.equal(m.tag, want.tag);
        if (want.type === MessageType.Rread) {
          const data = (m as Message<'Rread'>).data;
          const wanted = (want as Message<'Rread'>).data;
          assert.equal(data.length, wanted.length);
          if (wanted.length <= 16 << 10) assert.deepEqual(data, wanted, 'small reads keep their bytes');
        } else {
          assert.deepEqual(m, want);
        }
      }
    }),
    { numRuns: 200 },
  );
});
