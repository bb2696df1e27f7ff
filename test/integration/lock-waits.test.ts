import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { startVirtfs, type VirtfsProcess } from '../kernel/virtfs-process.js';
import { lock as hostLock } from '../../src/backend/local/sys.js';
import { LinuxOpenFlag as O, LockFlag, LockStatus, LockType } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { rejectsWith } from './assertions.js';
import { cpuSeconds } from './process-cpu.js';
import { startFixture, type Fixture } from './server-fixture.js';
import { WireClient } from './wire-client.js';

const lockReq = (fid: number, lockType: number, flags = 0) => ({ fid, lockType, flags, start: 0n, length: 0n, procId: 1, clientId: 'test' });
const WRLCK_WAIT = (fid: number) => lockReq(fid, LockType.WRLCK, LockFlag.BLOCK);

async function openOn(c: WireClient, fid: number, path: string, flags: number = O.RDWR): Promise<void> {
  await c.walk(0, fid, path);
  await c.rpc('Tlopen', { fid, flags });
}

/** Median time of `n` getattrs one after another, in milliseconds. */
async function getattrLatency(c: WireClient, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn });
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(n / 2)]!;
}

/** `p`, or a rejection if it has not settled within `ms`: a wait that never ends fails the test. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Milliseconds from `release()` until `granted` settles. */
async function wakeLatency(granted: Promise<unknown>, release: () => Promise<unknown> | void): Promise<number> {
  const t = performance.now();
  await release();
  await within(granted, 5000);
  return performance.now() - t;
}

describe('blocking locks: 1,500 waiters on a server child process', () => {
  let dir: string;
  let server: VirtfsProcess;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtfs-lockwait-'));
    writeFileSync(join(dir, 'locked'), 'lock me');
    // No warm-up: its second of CPU at start would land in the window that measures the waiters.
    server = await startVirtfs(dir, ['--max-requests', '1000', '--no-warm-up']);
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('waiters cost no server CPU and no latency while the lock is held, and wake at once when it is released', async () => {
    const holder = await WireClient.attach(server.port);
    await openOn(holder, 1, 'locked');
    assert.equal((await holder.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const probe = await WireClient.attach(server.port);
    const idle = await getattrLatency(probe, 200);

    // 4 connections × 375 fids, each open on the file and each with a blocking request waiting.
    const perConnection = 375;
    const waiters = await Promise.all([0, 1, 2, 3].map(() => WireClient.attach(server.port)));
    await Promise.all(waiters.flatMap((c) => Array.from({ length: perConnection }, (_, i) => openOn(c, 1 + i, 'locked'))));
    const order: number[] = [];
    const granted = waiters.flatMap((c, ci) =>
      Array.from({ length: perConnection }, (_, i) =>
        c.rpc('Tlock', WRLCK_WAIT(1 + i)).then((r) => (order.push(ci * perConnection + i), r)),
      ),
    );
    await sleep(500);
    assert.equal(order.length, 0, 'nobody is granted a lock that is held');

    const cpuBefore = cpuSeconds(server.pid);
    await sleep(3000);
    const cpu = cpuSeconds(server.pid) - cpuBefore;
    const busy = await getattrLatency(probe, 200);

    const wake = await wakeLatency(Promise.race(granted), () => holder.rpc('Tlock', lockReq(1, LockType.UNLCK)));
    await sleep(100);
    assert.equal(order.length, 1, 'one write lock is granted, to one waiter');
    const results = { cpuSecondsIn3s: cpu, idleGetattrMs: idle, waitingGetattrMs: busy, wakeMs: wake };
    console.log(`1,500 waiters: ${JSON.stringify(results)}`);
    assert.ok(cpu <= 0.06, `server used ${cpu} s of CPU in 3 s with 1,500 waiters (≤ 0.06 s expected)`);
    assert.ok(busy <= Math.max(3 * idle, idle + 2), `getattr took ${busy} ms with 1,500 waiters, ${idle} ms idle`);
    assert.ok(wake < 100, `the first waiter was granted ${wake} ms after the unlock`);
    for (const c of [holder, probe, ...waiters]) c.close();
  });
});

describe('blocking locks: the caps as virtfs serve options', () => {
  for (const option of ['--max-lock-waiters', '--max-lock-waiters-per-connection']) {
    test(`${option} 1: a second waiter is refused with ENOLCK`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'virtfs-lockcap-'));
      writeFileSync(join(dir, 'locked'), '');
      const server = await startVirtfs(dir, [option, '1']);
      try {
        const c = await WireClient.attach(server.port);
        for (const fid of [1, 2, 3]) await openOn(c, fid, 'locked');
        assert.equal((await c.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
        const first = c.rpc('Tlock', WRLCK_WAIT(2)).catch(() => {});
        await rejectsWith(within(c.rpc('Tlock', WRLCK_WAIT(3)), 2000), Errno.ENOLCK);
        c.close();
        await first;
      } finally {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('blocking locks: waking and caps', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ limits: { maxLockWaitersPerConnection: 2, maxLockWaiters: 3 } });
  });

  /** A file of its own for each test, so that locks a test leaves behind cannot reach the next. */
  let files = 0;
  function freshFile(): string {
    const name = `locked-${++files}`;
    writeFileSync(join(fx.root, name), 'lock me');
    return name;
  }
  after(() => fx.close());

  /** A holder with a write lock on the whole file, and a waiter asking for one. */
  async function contended(): Promise<{ holder: WireClient; waiter: WireClient; granted: Promise<unknown> }> {
    const file = freshFile();
    const holder = await WireClient.attach(fx.port);
    await openOn(holder, 1, file);
    assert.equal((await holder.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const waiter = await WireClient.attach(fx.port);
    await openOn(waiter, 1, file);
    const granted = waiter.rpc('Tlock', WRLCK_WAIT(1));
    // Long enough for a poller to have backed off to its slowest rate.
    await sleep(1200);
    return { holder, waiter, granted };
  }

  for (const [how, release] of [
    ['an unlock', (h: WireClient) => h.rpc('Tlock', lockReq(1, LockType.UNLCK))],
    ['a clunk of the holding fid', (h: WireClient) => h.rpc('Tclunk', { fid: 1 })],
    ['the holder disconnecting', (h: WireClient) => h.close()],
  ] as const) {
    test(`${how} wakes the waiter at once`, async () => {
      const { holder, waiter, granted } = await contended();
      const wake = await wakeLatency(granted, () => release(holder));
      assert.ok(wake < 50, `granted ${wake} ms after ${how}`);
      holder.close();
      waiter.close();
    });
  }

  test('a downgrade to a read lock wakes a reader at once', async () => {
    const file = freshFile();
    const holder = await WireClient.attach(fx.port);
    await openOn(holder, 1, file);
    assert.equal((await holder.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const reader = await WireClient.attach(fx.port);
    await openOn(reader, 1, file);
    const granted = reader.rpc('Tlock', lockReq(1, LockType.RDLCK, LockFlag.BLOCK));
    await sleep(1200);
    const wake = await wakeLatency(granted, () => holder.rpc('Tlock', lockReq(1, LockType.RDLCK)));
    assert.ok(wake < 50, `granted ${wake} ms after the downgrade`);
    holder.close();
    reader.close();
  });

  test('an unlock grants every waiter that no longer conflicts, in arrival order: both readers, then the writer behind them', async () => {
    const file = freshFile();
    const holder = await WireClient.attach(fx.port);
    await openOn(holder, 1, file);
    assert.equal((await holder.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const readers = await WireClient.attach(fx.port);
    const writer = await WireClient.attach(fx.port);
    for (const fid of [1, 2]) await openOn(readers, fid, file);
    await openOn(writer, 1, file);
    const read = [1, 2].map((fid) => readers.rpc('Tlock', lockReq(fid, LockType.RDLCK, LockFlag.BLOCK)));
    await sleep(50);
    let written = false;
    const write = writer.rpc('Tlock', WRLCK_WAIT(1)).then((r) => ((written = true), r));
    await sleep(50);
    await holder.rpc('Tlock', lockReq(1, LockType.UNLCK));
    assert.deepEqual((await within(Promise.all(read), 1000)).map((r) => r.status), [LockStatus.SUCCESS, LockStatus.SUCCESS]);
    await sleep(50);
    assert.equal(written, false, 'the writer waits while the readers hold');
    const wake = await wakeLatency(write, async () => {
      await readers.rpc('Tlock', lockReq(1, LockType.UNLCK));
      await readers.rpc('Tlock', lockReq(2, LockType.UNLCK));
    });
    assert.ok(wake < 50, `the writer was granted ${wake} ms after the last reader let go`);
    for (const c of [holder, readers, writer]) c.close();
  });

  test('clunking the waiting fid ends its wait at once with EBADF', async () => {
    const { holder, waiter, granted } = await contended();
    const t = performance.now();
    await waiter.rpc('Tclunk', { fid: 1 });
    await rejectsWith(granted, Errno.EBADF);
    const ended = performance.now() - t;
    assert.ok(ended < 50, `the wait ended ${ended} ms after the clunk`);
    holder.close();
    waiter.close();
  });

  test('a lock held by another process is granted soon after that process lets go', async () => {
    // This test process is "another process": the server cannot hear its unlock.
    const file = freshFile();
    const fd = openSync(join(fx.root, file), 'r+');
    assert.equal(await hostLock(fd, LockType.WRLCK, 0n, 0n), true);
    const c = await WireClient.attach(fx.port);
    await openOn(c, 1, file);
    const granted = c.rpc('Tlock', WRLCK_WAIT(1));
    await sleep(300);
    const wake = await wakeLatency(granted, () => hostLock(fd, LockType.UNLCK, 0n, 0n));
    assert.ok(wake < 1500, `granted ${wake} ms after the other process unlocked`);
    closeSync(fd);
    c.close();
  });

  test('waiters beyond the per-connection and the server-wide caps are refused with ENOLCK', async () => {
    const file = freshFile();
    const holder = await WireClient.attach(fx.port);
    await openOn(holder, 1, file);
    assert.equal((await holder.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    const a = await WireClient.attach(fx.port);
    const bb = await WireClient.attach(fx.port);
    for (const fid of [1, 2, 3]) await openOn(a, fid, file);
    for (const fid of [1, 2]) await openOn(bb, fid, file);
    const flushed = a.rpc('Tlock', WRLCK_WAIT(1), 700).catch((e) => e);
    const waiting = [a.rpc('Tlock', WRLCK_WAIT(2))];
    await rejectsWith(within(a.rpc('Tlock', WRLCK_WAIT(3)), 2000), Errno.ENOLCK);
    waiting.push(bb.rpc('Tlock', WRLCK_WAIT(1)));
    await rejectsWith(within(bb.rpc('Tlock', WRLCK_WAIT(2)), 2000), Errno.ENOLCK);
    // A request that need not wait is never refused.
    assert.equal((await a.rpc('Tlock', lockReq(3, LockType.WRLCK))).status, LockStatus.BLOCKED);
    // A flushed waiter gives its place back.
    await a.rpc('Tflush', { oldtag: 700 });
    await flushed;
    let refused: unknown = null;
    waiting.push(a.rpc('Tlock', WRLCK_WAIT(3)).catch((e) => (refused = e)));
    await sleep(100);
    assert.equal(refused, null, 'a waiter in the place of a flushed one is not refused');
    holder.close();
    await Promise.race(waiting);
    for (const w of waiting) w.catch(() => {});
    a.close();
    bb.close();
  });
});

describe('blocking locks and --max-requests', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ limits: { maxRequestsInFlight: 4 } });
    writeFileSync(join(fx.root, 'locked'), 'lock me');
  });
  after(() => fx.close());

  test('a connection whose every request slot waits for a lock still reads the unlock that ends the waits', async () => {
    const c = await WireClient.attach(fx.port);
    for (let fid = 1; fid <= 9; fid++) await openOn(c, fid, 'locked');
    assert.equal((await c.rpc('Tlock', lockReq(1, LockType.WRLCK))).status, LockStatus.SUCCESS);
    // Twice as many waiters as the connection may have requests working, all behind the holder.
    const waits = [2, 3, 4, 5, 6, 7, 8, 9].map((fid) => c.rpc('Tlock', WRLCK_WAIT(fid)).then(() => fid));
    await sleep(100);
    assert.equal((await within(c.rpc('Tlock', lockReq(1, LockType.UNLCK)), 5000)).status, LockStatus.SUCCESS);
    const first = await within(Promise.race(waits), 5000);
    assert.ok(first >= 2);
    c.close();
  });
});
