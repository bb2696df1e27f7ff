import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encode, message } from '../../src/protocol/codec.js';
import { LinuxOpenFlag as O } from '../../src/protocol/constants.js';
import { isMessage } from '../../src/protocol/messages.js';
import { attached, startFixture, type Fixture, type RawPeer } from './server-fixture.js';

// A large Twrite arrives in several socket reads. Its payload is written from the pieces as they
// came (one pwritev), or joined when its header is split across reads: the file must hold
// exactly the bytes sent either way.

let fx: Fixture;
let peer: RawPeer;
const trace: string[] = [];

before(async () => {
  fx = await startFixture({ trace: (_c, line) => trace.push(line) });
  peer = await attached(fx.port, 1 << 20);
  peer.socket.setNoDelay(true);
  peer.send(message('Twalk', { tag: 2, fid: 0, newfid: 1, wnames: [] }));
  assert.ok(isMessage((await peer.next())!, 'Rwalk'));
  peer.send(message('Tlcreate', { tag: 3, fid: 1, name: Buffer.from('big'), flags: O.RDWR, mode: 0o644, gid: 0 }));
  assert.ok(isMessage((await peer.next())!, 'Rlcreate'));
});

after(async () => {
  peer.close();
  await fx.close();
});

/** Send `frame` in pieces cut at `cuts`, pausing between them so that each is a read of its own. */
async function sendInPieces(frame: Buffer, cuts: number[]): Promise<void> {
  let at = 0;
  for (const n of [...cuts, frame.length]) {
    const end = Math.min(n, frame.length);
    if (end > at) peer.send(frame.subarray(at, end));
    at = end;
    await sleep(15);
  }
}

function pattern(size: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff));
}

for (const [name, offset, cuts, scattered] of [
  ['whose header is in the first read is written from its pieces', 0, [40, 70_000, 70_050, 400_000], true],
  ['whose header is split across reads is joined and written whole', 1 << 20, [5, 12, 90_000, 600_000], false],
] as const) {
  test(`a Twrite of nearly 1 MiB ${name}`, async () => {
    const data = pattern((1 << 20) - 4096, offset >> 16); // a frame within msize
    trace.length = 0;
    await sendInPieces(encode(message('Twrite', { tag: 4, fid: 1, offset: BigInt(offset), data })), [...cuts]);
    const r = await peer.next();
    assert.ok(r && isMessage(r, 'Rwrite'), `reply ${r?.type}`);
    assert.equal(r.count, data.length);
    assert.equal(trace.some((l) => /<- Twrite tag 4 .*in \d+ pieces/.test(l)), scattered, trace.filter((l) => l.startsWith('<- Twrite')).join('\n'));
    assert.ok(readFileSync(join(fx.root, 'big')).subarray(offset, offset + data.length).equals(data), 'the file holds the bytes sent');
  });
}
