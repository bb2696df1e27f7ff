import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { openFdCount } from '../../src/backend/local/sys.js';
import { encode, message } from '../../src/protocol/codec.js';
import { LinuxOpenFlag as O, LockFlag, LockStatus, LockType } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { attached, RawPeer, startFixture, type Fixture } from './server-fixture.js';
import { b, WireClient } from './wire-client.js';
import { rejectsWith } from './assertions.js';

let fx: Fixture;
before(async () => {
  fx = await startFixture();
  writeFileSync(join(fx.root, 'data'), Buffer.alloc(64 * 1024, 1));
  writeFileSync(join(fx.root, 'locked'), 'lock me');
});
after(async () => {
  await fx.close();
});

async function openOn(c: WireClient, fid: number, path: string, flags: number = O.RDWR): Promise<void> {
  await c.walk(0, fid, path);
  await c.rpc('Tlopen', { fid, flags });
}

const lockReq = (fid: number, lockType: number, flags = 0) => ({ fid, lockType, flags, start: 0n, length: 0n, procId: 1, clientId: 'test' });

describe('requests in flight', () => {
  test('many pipelined requests are all answered, each to its own tag', async () => {
    const c = await WireClient.attach(fx.port);
    await openOn(c, 1, 'data', O.RDONLY);
    const reads = Array.from({ length: 64 }, (_, i) => c.rpc('Tread', { fid: 1, offset: BigInt(i * 1000), count: 1000 }));
    const replies = await Promise.all(reads);
    for (const r of replies) assert.equal(r.data.length, 1000);
    c.close();
  });

  test('beyond --max-requests the server stops reading, and still answers everything', async () => {
    const small = await startFixture({ limits: { maxRequestsInFlight: 2 } });
    writeFileSync(join(small.root, 'f'), 'x');
    const c = await WireClient.attach(small.port);
    const all = await Promise.all(Array.from({ length: 40 }, () => c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn })));
    assert.equal(all.length, 40);
    c.close();
    await small.close();
  });

  test('beyond --max-fids a new fid is EMFILE', async () => {
    const small = await startFixture({ limits: { maxFidsPerConnection: 3 } });
    const c = await WireClient.attach(small.port);
    await c.walk(0, 1, '');
    await c.walk(0, 2, '');
    await rejectsWith(c.walk(0, 3, ''), Errno.EMFILE);
    await c.rpc('Tclunk', { fid: 2 });
    await c.walk(0, 3, '');
    c.close();
    await small.close();
  });

  test('a tag reused while its request is in progress closes the connection', async () => {
    const holder = await WireClient.attach(fx.port);
    await openOn(holder, 1, 'locked');
    assert.equal((await holder.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const p = await RawPeer.connect(fx.port);
    p.send(message('Tversion', { tag: 0xffff, msize: 8192, version: '9P2000.L' }));
    await p.next();
    p.send(message('Tattach', { tag: 1, fid: 0, afid: 0xffffffff, uname: '', aname: '', nUname: 0 }));
    await p.next();
    p.send(message('Twalk', { tag: 2, fid: 0, newfid: 1, wnames: [b('locked')] }));
    await p.next();
    p.send(message('Tlopen', { tag: 3, fid: 1, flags: O.RDWR }));
    await p.next();
    p.send(message('Tlock', { tag: 9, ...lockReq(1, LockType.WRLCK, LockFlag.BLOCK) }));
    await sleep(50);
    p.send(message('Tgetattr', { tag: 9, fid: 0, requestMask: 0x7ffn }));
    assert.equal(await p.waitClosed(), true);
    holder.close();
  });
});

describe('Tflush', () => {
  test('flushing a blocked request: its reply (if any) comes before Rflush, never after', async () => {
    const holder = await WireClient.attach(fx.port);
    await openOn(holder, 1, 'locked');
    assert.equal((await holder.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const c = await WireClient.attach(fx.port);
    await openOn(c, 1, 'locked');
    const blocked = c.rpc('Tlock', lockReq(1, LockType.WRLCK, LockFlag.BLOCK), 500).catch((e) => e);
    await sleep(100);
    const flushed = c.rpc('Tflush', { oldtag: 500 }, 501);
    await flushed;
    await blocked;
    const i500 = c.arrivals.indexOf(500);
    const i501 = c.arrivals.indexOf(501);
    assert.ok(i501 >= 0, 'Rflush arrived');
    assert.ok(i500 < i501, 'nothing for the flushed tag after Rflush');
    await sleep(100);
    assert.equal(c.arrivals.filter((t) => t === 500).length, i500 >= 0 ? 1 : 0);
    c.close();
    holder.close();
  });

  test('flushing a tag that is not in flight is answered at once', async () => {
    const c = await WireClient.attach(fx.port);
    await c.rpc('Tflush', { oldtag: 1234 });
    c.close();
  });
});

describe('locks', () => {
  test('a write lock excludes another connection until it is released', async () => {
    const a = await WireClient.attach(fx.port);
    const bb = await WireClient.attach(fx.port);
    await openOn(a, 1, 'locked');
    await openOn(bb, 1, 'locked');
    assert.equal((await a.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    assert.equal((await bb.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.BLOCKED);
    const g = await bb.rpc('Tgetlock', { fid: 1, lockType: LockType.WRLCK, start: 0n, length: 0n, procId: 2, clientId: 'b' });
    assert.equal(g.lockType, LockType.WRLCK);
    assert.equal((await a.rpc('Tlock', lockReq(1, LockType.UNLCK))).status, LockStatus.SUCCESS);
    assert.equal((await bb.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const g2 = await a.rpc('Tgetlock', { fid: 1, lockType: LockType.RDLCK, start: 0n, length: 0n, procId: 1, clientId: 'a' });
    assert.equal(g2.lockType, LockType.WRLCK);
    a.close();
    bb.close();
  });

  test('two fids of one connection exclude each other', async () => {
    const c = await WireClient.attach(fx.port);
    await openOn(c, 1, 'locked');
    await openOn(c, 2, 'locked');
    assert.equal((await c.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    assert.equal((await c.rpc('Tlock', lockReq(2, LockType.RDLCK))).status, LockStatus.BLOCKED);
    c.close();
  });

  test('a blocking lock waits in the server and is granted when the holder unlocks', async () => {
    const a = await WireClient.attach(fx.port);
    const bb = await WireClient.attach(fx.port);
    await openOn(a, 1, 'locked');
    await openOn(bb, 1, 'locked');
    assert.equal((await a.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    let granted = false;
    const waiting = bb.rpc('Tlock', lockReq(1, LockType.WRLCK, LockFlag.BLOCK)).then((r) => ((granted = true), r));
    await sleep(150);
    assert.equal(granted, false);
    await a.rpc('Tlock', lockReq(1, LockType.UNLCK));
    assert.equal((await waiting).status, LockStatus.SUCCESS);
    a.close();
    bb.close();
  });

  test('a disconnect releases the locks the connection held', async () => {
    const a = await WireClient.attach(fx.port);
    await openOn(a, 1, 'locked');
    assert.equal((await a.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const bb = await WireClient.attach(fx.port);
    await openOn(bb, 1, 'locked');
    const waiting = bb.rpc('Tlock', lockReq(1, LockType.WRLCK, LockFlag.BLOCK));
    a.close();
    assert.equal((await waiting).status, LockStatus.SUCCESS);
    bb.close();
  });
});

/** The descriptor count once earlier tests' sockets have finished closing. */
async function settledFdCount(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const n = openFdCount();
    if (n === last) return n;
    last = n;
    await sleep(40);
  }
  return last;
}

describe('resources', () => {
  test('a disconnect releases every descriptor the connection held', async () => {
    const base = await settledFdCount();
    const c = await WireClient.attach(fx.port);
    for (let i = 1; i <= 50; i++) await openOn(c, i, 'data', O.RDONLY);
    for (let i = 51; i <= 100; i++) await c.walk(0, i, 'locked');
    // One per open file; the fids of one object share its node's descriptor.
    assert.ok(openFdCount() >= base + 50);
    c.close();
    for (let i = 0; i < 100 && openFdCount() > base; i++) await sleep(20);
    assert.equal(openFdCount(), base);
  });

  test('clunking every fid returns every descriptor', async () => {
    const c = await WireClient.attach(fx.port);
    const base = await settledFdCount();
    for (let i = 1; i <= 20; i++) await openOn(c, i, 'data', O.RDONLY);
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.rpc('Tclunk', { fid: i + 1 })));
    for (let i = 0; i < 100 && openFdCount() > base; i++) await sleep(10);
    assert.equal(openFdCount(), base);
    c.close();
  });

  // Found by the property test: a fid clunked while Tlopen/Tlcreate was working on it must not
  // keep the file the request opened. Both frames go in one write, so the clunk arrives while the
  // open is still on the thread pool.
  test('a clunk racing Tlcreate or Tlopen of the same fid leaks no descriptor', async () => {
    const base = await settledFdCount();
    const p = await attached(fx.port);
    for (let round = 0; round < 20; round++) {
      p.send(message('Twalk', { tag: 1, fid: 0, newfid: 1, wnames: [] }));
      p.send(message('Twalk', { tag: 2, fid: 0, newfid: 2, wnames: [b('data')] }));
      await p.next();
      await p.next();
      p.send(
        Buffer.concat([
          encode(message('Tlcreate', { tag: 3, fid: 1, name: b(`raced-${round}`), flags: O.RDWR, mode: 0o644, gid: 0 })),
          encode(message('Tclunk', { tag: 4, fid: 1 })),
          encode(message('Tlopen', { tag: 5, fid: 2, flags: O.RDONLY })),
          encode(message('Tclunk', { tag: 6, fid: 2 })),
        ]),
      );
      const tags = new Set<number>();
      for (let i = 0; i < 4; i++) tags.add((await p.next())!.tag);
      assert.deepEqual([...tags].sort(), [3, 4, 5, 6]);
    }
    p.close();
    for (let i = 0; i < 100 && openFdCount() > base; i++) await sleep(10);
    assert.equal(openFdCount(), base);
  });

  test('a clunk racing reads on the same fid never breaks the server', async () => {
    const c = await WireClient.attach(fx.port);
    for (let round = 0; round < 20; round++) {
      await openOn(c, 1, 'data', O.RDONLY);
      const reads = Array.from({ length: 10 }, () => c.rpc('Tread', { fid: 1, offset: 0n, count: 4096 }).catch((e) => e));
      await c.rpc('Tclunk', { fid: 1 });
      for (const r of await Promise.all(reads)) {
        if (r instanceof Error) assert.equal((r as { errno?: number }).errno, Errno.EBADF);
        else assert.equal(r.data.length, 4096);
      }
    }
    await c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn });
    c.close();
  });
});
