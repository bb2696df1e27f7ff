import { AsyncResource } from 'node:async_hooks';
import type { LockRange } from '../backend.js';
import { LockType } from '../../protocol/constants.js';
import { Errno, P9Error } from '../../protocol/errno.js';

/**
 * The fallback for conflicts held outside the server, which nothing here can hear released: one
 * timer per contended inode retries one waiter (in turn), backing off to a retry a second. Its
 * cost follows the number of contended inodes, never the number of waiters.
 */
const FALLBACK_FIRST_MS = 25;
const FALLBACK_MAX_MS = 1000;

/** One blocking lock request asleep until its range may be free. */
interface Waiter {
  /** The open file asking: its own locks never conflict with it. */
  readonly owner: object;
  readonly range: LockRange;
  /** One non-blocking attempt, run in the waiting request's own async context (its credentials). */
  readonly attempt: () => Promise<boolean>;
  readonly signal: AbortSignal;
  /** An attempt is on the thread pool: a flush then waits for its outcome. */
  attempting: boolean;
  settled: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

/** The waiters of one inode, and what wakes them. */
class InodeQueue {
  /** In arrival order. */
  readonly waiters = new Set<Waiter>();
  /** Bumped by every change: a waiter whose first attempt straddled one tries again at once. */
  epoch = 0;
  /** Requests between their first attempt and their place in `waiters`. */
  arriving = 0;
  passing = false;
  passAgain = false;
  timer: NodeJS.Timeout | null = null;
  delay = FALLBACK_FIRST_MS;
  /** The waiter the timer tried last. */
  turn: Waiter | null = null;
}

/**
 * Blocking byte-range lock requests, asleep per inode (dev, ino) until this server releases or
 * narrows a lock there (unlock, downgrade, close of a file that held locks), then retried once
 * each in arrival order. A waiter whose range overlaps one just granted to another file in the
 * same pass in a conflicting mode is not retried: that attempt could only fail. While nothing
 * changes, a waiting request costs no CPU at all (see FALLBACK_* for conflicts held by other
 * processes).
 */
export class LockWaits {
  private readonly queues = new Map<string, InodeQueue>();

  /** Resolves once `attempt` has succeeded; rejects EINTR when `signal` aborts, or with the attempt's error. */
  async wait(dev: bigint, ino: bigint, owner: object, range: LockRange, attempt: () => Promise<boolean>, signal: AbortSignal): Promise<void> {
    const key = keyOf(dev, ino);
    const q = this.queueOf(key);
    q.arriving++;
    try {
      for (;;) {
        if (signal.aborted) throw interrupted();
        const epoch = q.epoch;
        if (await attempt()) return;
        if (q.epoch === epoch) break;
      }
      if (signal.aborted) throw interrupted();
    } catch (err) {
      q.arriving--;
      this.forgetIfIdle(key, q);
      throw err;
    }
    q.arriving--;
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        owner,
        range,
        attempt: AsyncResource.bind(attempt),
        signal,
        attempting: false,
        settled: false,
        resolve,
        reject,
      };
      const onAbort = () => {
        if (!w.attempting) this.settle(key, q, w, interrupted());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      w.resolve = () => (signal.removeEventListener('abort', onAbort), resolve());
      w.reject = (err) => (signal.removeEventListener('abort', onAbort), reject(err));
      q.waiters.add(w);
      this.arm(key, q);
    });
  }

  /** This server released or narrowed a lock on the inode: retry its waiters. */
  changed(dev: bigint, ino: bigint): void {
    const key = keyOf(dev, ino);
    const q = this.queues.get(key);
    if (!q) return;
    q.epoch++;
    if (q.waiters.size > 0) void this.pass(key, q);
  }

  private queueOf(key: string): InodeQueue {
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = new InodeQueue()));
    return q;
  }

  /** Retry every waiter once, in arrival order; `grantedBefore` were granted just now, elsewhere. */
  private async pass(key: string, q: InodeQueue, grantedBefore: Waiter[] = []): Promise<void> {
    if (q.passing) {
      q.passAgain = true;
      return;
    }
    q.passing = true;
    try {
      do {
        q.passAgain = false;
        // Grants go stale once a round ends (a release since then started another round).
        const granted = grantedBefore;
        grantedBefore = [];
        for (const w of [...q.waiters]) {
          if (w.settled || w.attempting || granted.some((g) => conflicts(g, w))) continue;
          if (await this.retry(key, q, w)) granted.push(w);
        }
      } while (q.passAgain && q.waiters.size > 0);
    } finally {
      q.passing = false;
    }
  }

  /** One attempt for a waiter; settles it if granted, failed, or flushed meanwhile. */
  private async retry(key: string, q: InodeQueue, w: Waiter): Promise<boolean> {
    w.attempting = true;
    let granted: boolean;
    try {
      // A change during the attempt went by this waiter (a pass skips one attempting): try again.
      for (;;) {
        const epoch = q.epoch;
        granted = await w.attempt();
        if (granted || w.signal.aborted || q.epoch === epoch) break;
      }
    } catch (err) {
      w.attempting = false;
      this.settle(key, q, w, err);
      return false;
    }
    w.attempting = false;
    // A flush that came during the attempt: the request answers with what happened.
    if (granted || w.signal.aborted) this.settle(key, q, w, granted ? null : interrupted());
    return granted;
  }

  private settle(key: string, q: InodeQueue, w: Waiter, err: unknown): void {
    if (w.settled) return;
    w.settled = true;
    q.waiters.delete(w);
    if (q.turn === w) q.turn = null;
    if (err) w.reject(err);
    else w.resolve();
    this.forgetIfIdle(key, q);
  }

  /** The fallback timer: retry one waiter, each in turn (so one blocked for its own reasons cannot hold up the rest). */
  private arm(key: string, q: InodeQueue): void {
    if (q.timer) return;
    q.timer = setTimeout(() => void this.tick(key, q), q.delay);
    q.timer.unref();
  }

  private async tick(key: string, q: InodeQueue): Promise<void> {
    q.timer = null;
    const next = q.passing ? undefined : this.nextInTurn(q);
    if (next && !next.attempting) {
      q.turn = next;
      if (await this.retry(key, q, next)) {
        // Something outside the server let go: the others may be free too.
        q.delay = FALLBACK_FIRST_MS;
        await this.pass(key, q, [next]);
      } else {
        q.delay = Math.min(q.delay * 2, FALLBACK_MAX_MS);
      }
    }
    if (q.waiters.size > 0) this.arm(key, q);
  }

  /** The waiter after the one the timer tried last, in arrival order (from the start once past the end). */
  private nextInTurn(q: InodeQueue): Waiter | undefined {
    let passed = q.turn === null;
    for (const w of q.waiters) {
      if (passed) return w;
      passed = w === q.turn;
    }
    return q.waiters.values().next().value;
  }

  private forgetIfIdle(key: string, q: InodeQueue): void {
    if (q.waiters.size > 0 || q.arriving > 0) return;
    if (q.timer) clearTimeout(q.timer);
    q.timer = null;
    if (this.queues.get(key) === q) this.queues.delete(key);
  }
}

function keyOf(dev: bigint, ino: bigint): string {
  return `${dev}:${ino}`;
}

function interrupted(): P9Error {
  return new P9Error(Errno.EINTR, 'lock wait interrupted');
}

/** Whether `held`, just granted, certainly blocks `w`: another file, overlapping, one of them a write lock. */
function conflicts(held: Waiter, w: Waiter): boolean {
  if (held.owner === w.owner) return false;
  if (held.range.lockType !== LockType.WRLCK && w.range.lockType !== LockType.WRLCK) return false;
  return overlaps(held.range, w.range);
}

/** Length 0 runs to the end of the file, and beyond. */
function overlaps(a: LockRange, b: LockRange): boolean {
  const aEnd = a.length === 0n ? null : a.start + a.length;
  const bEnd = b.length === 0n ? null : b.start + b.length;
  return (aEnd === null || b.start < aEnd) && (bEnd === null || a.start < bEnd);
}
