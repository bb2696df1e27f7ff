import type { Credentials } from '../backend/backend.js';
import { MIN_MSIZE, NOTAG, VERSION_9P2000L, VERSION_UNKNOWN } from '../protocol/constants.js';
import { decode, encode, readHeader } from '../protocol/codec.js';
import { describe } from '../protocol/describe.js';
import { Errno, errnoName, P9Error, toErrno } from '../protocol/errno.js';
import { defOf, MessageType, messageName, type Message, type TMessage } from '../protocol/messages.js';
import { checkPolicy } from './export-policy.js';
import type { Fid } from './fid.js';
import { ByteBudget } from './byte-budget.js';
import { Cancellation } from './cancellation.js';
import { FidTable } from './fid-table.js';
import { LockWaiterCount } from './lock-waiters.js';
import { handlerFor } from './handlers/index.js';
import { reply, type Reply } from './reply.js';
import { RequestContext } from './request-context.js';
import { decodeScatteredTwrite } from './scattered-twrite.js';
import type { ServerContext } from './server-context.js';

/** Where a session's replies go: a socket, a pipe, or an embedding application. */
export interface SessionOutput {
  /** Queue a reply; `written`, if given, once its bytes have left `frame` (or never will). */
  send(frame: Buffer, written?: () => void): void;
  /**
   * Deliver no further frame until `resume` (the session has as many requests in progress as it
   * may). Frames already received wait: the limit holds whatever one read brought.
   */
  pause(): void;
  resume(): void;
  /** End the connection: the peer broke the protocol beyond repair. */
  close(reason: string): void;
}

interface InFlight {
  abort: Cancellation;
  /** Made when someone waits for the request (Tflush, Tversion, close), settled as it finishes. */
  done: Promise<void> | null;
  finish: (() => void) | null;
}

/**
 * The 9P state of one connection: negotiated msize, fids, and the requests in progress. Frames go
 * in through `receive`; replies come out through `SessionOutput.send`, in any order, each exactly
 * once — except that nothing is sent after the connection is closed.
 */
export class Session {
  /** 0 until Tversion has been answered. */
  msize = 0;
  readonly fids: FidTable;
  readonly xattrBudget: ByteBudget;
  readonly lockWaiters: LockWaiterCount;
  private readonly inflight = new Map<number, InFlight>();
  private paused = false;
  /** Requests in progress that wait on another's doing and do not count as working (see park). */
  private parked = 0;
  private closed = false;

  constructor(
    readonly server: ServerContext,
    private readonly out: SessionOutput,
    /** Shown in traces and logs. */
    readonly id: number,
  ) {
    this.fids = new FidTable(server.limits.maxFidsPerConnection);
    this.xattrBudget = new ByteBudget(server.limits.maxXattrBytesPerConnection, 'connection', server.xattrBudget);
    this.lockWaiters = new LockWaiterCount(server.limits.maxLockWaitersPerConnection, 'this connection');
  }

  /** Requests received and not yet answered. */
  get inProgress(): number {
    return this.inflight.size;
  }

  /** Largest frame accepted now: the negotiated msize, or the server's maximum before Tversion. */
  get frameLimit(): number {
    return this.msize || this.server.limits.maxMsize;
  }

  receive(frame: Buffer): void {
    if (this.closed) return;
    const { type, tag } = readHeader(frame);
    if (this.inflight.has(tag)) {
      this.fail(`tag ${tag} reused while its request is still in progress`);
      return;
    }
    const d = defOf(type);
    if (!d || d.name[0] !== 'T' || type === MessageType.Tlerror) {
      this.trace(`<- ${d?.name ?? `type ${type}`} tag ${tag} (unsupported)`);
      this.sendError(tag, type, new P9Error(Errno.EOPNOTSUPP, `message type ${type} is not supported`));
      return;
    }
    let m: TMessage;
    try {
      m = decode(frame) as TMessage;
    } catch (err) {
      this.trace(`<- ${d.name} tag ${tag} (undecodable: ${(err as Error).message})`);
      this.sendError(tag, type, new P9Error(Errno.EPROTO, (err as Error).message));
      return;
    }
    if (this.tracing) this.trace(`<- ${describe(m)}`);
    this.start(m);
  }

  /**
   * A frame that arrived in several pieces: a Twrite keeps them (written with one pwritev, see
   * scattered-twrite.ts); anything else is joined and received as usual.
   */
  receivePieces(pieces: Buffer[], size: number): void {
    if (this.closed) return;
    const m = decodeScatteredTwrite(pieces, size);
    if (!m || this.inflight.has(m.tag)) {
      this.receive(Buffer.concat(pieces, size));
      return;
    }
    if (this.tracing) this.trace(`<- Twrite tag ${m.tag} fid ${m.fid} offset ${m.offset} count ${size - 23} (in ${pieces.length} pieces)`);
    this.start(m);
  }

  /** A frame bigger than msize: refused by tag; its body is skipped by the transport. */
  receiveOversized(type: number, tag: number, size: number): void {
    if (this.closed) return;
    this.trace(`<- ${messageName(type)} tag ${tag} (${size} bytes exceeds msize ${this.frameLimit})`);
    this.sendError(tag, type, new P9Error(Errno.EINVAL, `frame of ${size} bytes exceeds msize ${this.frameLimit}`));
  }

  private start(m: TMessage): void {
    const entry: InFlight = { abort: new Cancellation(), done: null, finish: null };
    this.inflight.set(m.tag, entry);
    this.server.stats.requestsInProgress++;
    this.regulate();
    let r: Reply | Promise<Reply>;
    try {
      r = this.run(m, entry.abort);
    } catch (err) {
      this.complete(m, null, err, entry);
      return;
    }
    if (r instanceof Promise) {
      r.then(
        (r) => this.complete(m, r, null, entry),
        (err) => this.complete(m, null, err, entry),
      );
    } else {
      this.complete(m, r, null, entry);
    }
  }

  /**
   * A request answered without waiting (a clunk, an inline getattr) is answered here and now, not
   * after a promise's turn: one request at a time, the turn costs more than the request
   * (docs/performance.md).
   */
  private run(m: TMessage, signal: Cancellation): Reply | Promise<Reply> {
    if (m.type === MessageType.Tversion) return this.version(m);
    if (m.type === MessageType.Tflush) return this.flush(m);
    if (this.msize === 0) throw new P9Error(Errno.EPROTO, 'Tversion must come first');
    try {
      checkPolicy(this.server.policy, m);
    } catch (err) {
      // Tremove clunks its fid whatever the outcome, a refusal included (remove(5)).
      if (m.type === MessageType.Tremove && this.fids.has(m.fid)) this.fids.take(m.fid).release();
      throw err;
    }
    const ctx = new RequestContext(this, m.tag, signal);
    const cred = this.actingCredentials(m);
    let r: Reply | Promise<Reply>;
    try {
      const handle = () => handlerFor(m.type)(ctx, m);
      r = cred?.confined ? this.server.backend.confine(cred, handle) : handle();
    } catch (err) {
      ctx.finish();
      throw err;
    }
    if (!(r instanceof Promise)) {
      ctx.finish();
      return r;
    }
    return r.then(
      (reply) => {
        ctx.finish();
        return reply;
      },
      (err: unknown) => {
        ctx.finish();
        throw err;
      },
    );
  }

  /** The attach a request acts for: that of the fid it names first (Tattach and Tauth name none yet). */
  private actingCredentials(m: TMessage): Credentials | undefined {
    if (m.type === MessageType.Tattach || m.type === MessageType.Tauth) return undefined;
    const first = defOf(m.type)?.fields[0]?.[0];
    if (first !== 'fid' && first !== 'dfid' && first !== 'oldDirFid') return undefined;
    const id = (m as unknown as Record<string, number>)[first];
    return id !== undefined && this.fids.has(id) ? this.fids.get(id).cred : undefined;
  }

  private complete(m: TMessage, r: Reply | null, err: unknown, entry: InFlight): void {
    this.inflight.delete(m.tag);
    this.server.stats.requestsInProgress--;
    if (r) {
      this.server.stats.count(m.type, false);
      if (!this.closed) this.sendReply(m.tag, r);
    } else {
      if (!isExpected(err)) this.server.log.error({ err, request: messageName(m.type) }, 'unexpected error');
      this.sendError(m.tag, m.type, err);
    }
    entry.finish?.();
    this.regulate();
  }

  /**
   * Stop reading the connection while it has as many requests working as it may, and read again
   * once it has room. Parked requests do not count.
   */
  private regulate(): void {
    const working = this.inflight.size - this.parked;
    if (!this.paused && working >= this.server.limits.maxRequestsInFlight) {
      this.paused = true;
      this.out.pause();
    } else if (this.paused && working < this.server.limits.maxRequestsInFlight) {
      this.paused = false;
      if (!this.closed) this.out.resume();
    }
  }

  /**
   * A request that waits for something only a later request may bring about (a blocking lock,
   * which the holder's unlock on the same connection ends) stops counting against
   * maxRequestsInFlight while it waits: otherwise a connection full of waiters would never be
   * read again, and the unlock never arrive. Such waits have caps of their own. Returns the
   * call that ends the parking.
   */
  park(): () => void {
    this.parked++;
    this.regulate();
    let parked = true;
    return () => {
      if (!parked) return;
      parked = false;
      this.parked--;
      this.regulate();
    };
  }

  private sendReply(tag: number, r: Reply): void {
    let frame: Buffer;
    let written: (() => void) | undefined;
    if (Buffer.isBuffer(r)) {
      frame = trimmed(r);
      const frames = this.server.frames;
      if (frame !== r) frames.give(r);
      else if (frames.lends(r)) written = () => frames.give(r);
      frame.writeUInt16LE(tag, 5);
      if (this.tracing) this.trace(`-> ${messageName(frame[4]!)} tag ${tag} count ${frame.length - 11}`);
    } else {
      r.tag = tag;
      frame = encode(r);
      if (this.tracing) this.trace(`-> ${describe(r)}`);
    }
    if (this.msize && frame.length > this.msize) {
      // The client kills the connection on a reply >= msize; a clear error is better.
      this.server.log.error({ size: frame.length, msize: this.msize }, 'reply larger than msize');
      this.sendError(tag, frame[4]! - 1, new P9Error(Errno.EMSGSIZE, 'reply would exceed msize'));
      written?.();
      return;
    }
    this.out.send(frame, written);
  }

  private sendError(tag: number, type: number, err: unknown): void {
    this.server.stats.count(type, true);
    if (this.closed) return;
    const ecode = toErrno(err);
    const m = reply('Rlerror', { ecode });
    m.tag = tag;
    if (this.tracing) this.trace(`-> Rlerror tag ${tag} ecode ${ecode} (${errnoName(ecode)})${err instanceof Error && err.message !== errnoName(ecode) ? `: ${err.message}` : ''}`);
    this.out.send(encode(m));
  }

  /**
   * Tversion starts the session over: requests in progress are cancelled and waited for, every
   * fid is clunked, and the msize is renegotiated.
   */
  private async version(m: Message<'Tversion'>): Promise<Reply> {
    if (m.tag !== NOTAG) this.server.log.debug({ tag: m.tag }, 'Tversion with a tag other than NOTAG');
    await this.cancelAllExcept(m.tag);
    this.releaseFids();
    if (m.msize < MIN_MSIZE) {
      this.msize = 0;
      throw new P9Error(Errno.EMSGSIZE, `msize ${m.msize} is below the minimum of ${MIN_MSIZE}`);
    }
    const msize = Math.min(m.msize, this.server.limits.maxMsize);
    const known = m.version === VERSION_9P2000L || m.version.startsWith(`${VERSION_9P2000L}.`);
    this.msize = known ? msize : 0;
    return reply('Rversion', { msize, version: known ? VERSION_9P2000L : VERSION_UNKNOWN });
  }

  /**
   * Tflush is always answered, and only after the flushed request has finished: its reply (if it
   * produced one) goes out before Rflush, never after.
   */
  private async flush(m: Message<'Tflush'>): Promise<Reply> {
    const target = m.oldtag === m.tag ? undefined : this.inflight.get(m.oldtag);
    if (target) {
      target.abort.cancel();
      await finished(target);
    }
    return reply('Rflush', {});
  }

  private async cancelAllExcept(tag: number): Promise<void> {
    const others = [...this.inflight].filter(([t]) => t !== tag).map(([, e]) => e);
    for (const e of others) e.abort.cancel();
    await Promise.all(others.map(finished));
  }

  /** Register a fid made by a request; if the connection closed meanwhile, let it go at once. */
  addFid(fid: Fid): void {
    try {
      if (this.closed) throw new P9Error(Errno.EINTR, 'connection closed');
      this.fids.add(fid);
    } catch (err) {
      fid.release();
      throw err;
    }
  }

  private releaseFids(): void {
    for (const f of this.fids.clear()) f.release();
  }

  private fail(reason: string): void {
    this.server.log.warn({ connection: this.id, reason }, 'closing connection');
    this.out.close(reason);
  }

  /** The connection is gone: cancel everything and let go of every fid (and so every fd and lock). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.inflight.values()) e.abort.cancel();
    this.releaseFids();
  }

  /** Resolves when every request has finished (after close, when resources are really free). */
  async drained(): Promise<void> {
    await Promise.all([...this.inflight.values()].map(finished));
  }

  /** Whether lines are traced: built only then, as building them costs more than most requests. */
  private get tracing(): boolean {
    return this.server.trace !== undefined;
  }

  private trace(line: string): void {
    this.server.trace?.(this.id, line);
  }
}

/** Resolves once the request has finished (made on first ask: most requests are never waited for). */
function finished(e: InFlight): Promise<void> {
  return (e.done ??= new Promise<void>((r) => (e.finish = r)));
}

/**
 * A reply built in place may fill little of the frame allocated for it (a short read of a 1 MiB
 * Tread): it is copied out, so that a reply waiting to be sent holds only the bytes it sends.
 */
function trimmed(frame: Buffer): Buffer {
  const allocated = frame.buffer.byteLength;
  return allocated > 2 * frame.length && allocated - frame.length > 64 << 10 ? Buffer.from(frame) : frame;
}

/** Errors with an errno (ours, or a system call's) are answers; anything else is a bug worth logging. */
function isExpected(err: unknown): boolean {
  return err instanceof P9Error || typeof (err as { errno?: unknown })?.errno === 'number';
}
