import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { LockWaits } from '../../src/backend/local/lock-waits.js';
import { LockType } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';

const WHOLE = { lockType: LockType.WRLCK, start: 0n, length: 0n };
const DEV = 1n;
const INO = 2n;

/** A lock that attempts can take only once `free` is set; counts the attempts made. */
function fakeLock() {
  const state = { free: false, attempts: 0, holder: null as object | null };
  const attemptFor = (owner: object) => async () => {
    state.attempts++;
    await sleep(0);
    if (!state.free || state.holder) return false;
    state.holder = owner;
    return true;
  };
  return { state, attemptFor };
}

describe('LockWaits', () => {
  test('1,000 waiters on a lock held elsewhere make about one attempt per second, not one each', async () => {
    const waits = new LockWaits();
    const { state, attemptFor } = fakeLock();
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const all = Array.from({ length: 1000 }, () => {
      const owner = {};
      return waits.wait(DEV, INO, owner, WHOLE, attemptFor(owner), abort.signal).catch((e) => e);
    });
    await sleep(50);
    const settled = state.attempts;
    await sleep(2000);
    const extra = state.attempts - settled;
    abort.abort();
    await Promise.all(all);
    // The fallback timer backs off 25, 50, ... 1000 ms: under 10 attempts in 2 s, whatever the waiters.
    assert.ok(extra <= 10, `${extra} attempts in 2 s by 1,000 idle waiters`);
  });

  test('a release by the server grants the first waiter at once and skips those it blocks', async () => {
    const waits = new LockWaits();
    const { state, attemptFor } = fakeLock();
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const owners = Array.from({ length: 100 }, () => ({}));
    const order: number[] = [];
    const all = owners.map((o, i) => waits.wait(DEV, INO, o, WHOLE, attemptFor(o), abort.signal).then(() => order.push(i), (e) => e));
    await sleep(20);
    const before = state.attempts;
    state.free = true;
    const t = performance.now();
    waits.changed(DEV, INO);
    while (order.length === 0) await sleep(0);
    const wake = performance.now() - t;
    await sleep(20);
    assert.deepEqual(order, [0], 'the longest waiter, and only it');
    // One attempt granted; the fallback timer may have made one more meanwhile, never 99.
    assert.ok(state.attempts - before <= 2, `${state.attempts - before} attempts: the others are blocked by the grant and not tried`);
    assert.ok(wake < 20, `granted ${wake} ms after the release`);
    abort.abort();
    await Promise.all(all);
  });

  test('a release during a waiter\'s first attempt is not missed', async () => {
    const waits = new LockWaits();
    let release!: () => void;
    let attempts = 0;
    const attempt = async () => {
      attempts++;
      if (attempts === 1) {
        // The holder lets go while this attempt is on its way back, failed.
        await sleep(10);
        release();
        return false;
      }
      return true;
    };
    release = () => waits.changed(DEV, INO);
    await waits.wait(DEV, INO, {}, WHOLE, attempt, new AbortController().signal);
    assert.equal(attempts, 2);
  });

  test('a flush ends a wait at once with EINTR; one during an attempt gets that attempt\'s outcome', async () => {
    const waits = new LockWaits();
    const idle = new AbortController();
    const waiting = waits.wait(DEV, INO, {}, WHOLE, async () => false, idle.signal);
    await sleep(10);
    idle.abort();
    await assert.rejects(waiting, (e: { errno?: number }) => e.errno === Errno.EINTR);

    let finish!: (granted: boolean) => void;
    let calls = 0;
    const attempt = () => (++calls === 1 ? Promise.resolve(false) : new Promise<boolean>((r) => (finish = r)));
    const during = new AbortController();
    const granted = waits.wait(DEV, INO, {}, WHOLE, attempt, during.signal);
    await sleep(10);
    waits.changed(DEV, INO);
    await sleep(10);
    during.abort();
    finish(true);
    await granted; // granted, not EINTR: the lock is held and the reply says so
  });
});
