import type { Readable, Writable } from 'node:stream';
import { FrameSplitter } from '../protocol/frame-splitter.js';
import type { Limits } from '../server/limits.js';
import type { Server } from '../server/server.js';
import type { Session } from '../server/session.js';

/**
 * Serves one 9P connection over a byte stream (a socket, or stdin/stdout). Replies are batched
 * only where more are coming: those made while one read's frames are delivered go out in one
 * write once the frames are in; one made while other requests are still working corks the stream
 * until the loop has run every callback ready now (setImmediate), so replies finished by several
 * thread-pool completions cost one write system call. The reply to a lone request is written at
 * once: one request at a time is how a guest's program talks, and a turn of the loop (another
 * epoll and a callback from C++) costs such a round trip about 5 % (docs/performance.md).
 *
 * The connection is read, and its frames dispatched, only while the session has room for more
 * requests and the peer is taking its replies: a client that sends without reading makes the
 * server stop reading it, not queue replies without end.
 */
export class StreamConnection {
  readonly session: Session;
  /** Resolves once the connection is over and everything it held has been released. */
  readonly closed: Promise<void>;
  private readonly limits: Limits;
  private readonly splitter: FrameSplitter;
  /** Corked until the loop's next check phase (setImmediate). */
  private corked = false;
  /** A read's frames are being delivered: replies made meanwhile wait for the rest. */
  private delivering = false;
  /** Corked while delivering; uncorked once the read's frames are all in. */
  private corkedForRead = false;
  private over = false;
  /** The session has as many requests in progress as it may. */
  private busy = false;
  /** More reply bytes are queued than the limit: the peer is not reading them. */
  private backlogged = false;
  private readonly handshakeTimer: NodeJS.Timeout | null;
  /** Runs while a frame is partly received and the connection is being read. */
  private frameTimer: NodeJS.Timeout | null = null;
  private resolveClosed!: () => void;

  constructor(
    private readonly server: Server,
    private readonly input: Readable,
    private readonly output: Writable,
  ) {
    this.limits = server.context.limits;
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.session = server.openSession({
      send: (frame, written) => this.send(frame, written),
      pause: () => this.setBusy(true),
      resume: () => this.setBusy(false),
      close: () => this.end(),
    });
    this.splitter = new FrameSplitter(
      {
        frame: (f) => this.session.receive(f),
        pieces: (p, size) => this.session.receivePieces(p, size),
        oversized: (type, tag, size) => this.session.receiveOversized(type, tag, size),
        malformed: () => this.end(),
      },
      () => this.session.frameLimit,
    );
    const handshake = this.limits.handshakeTimeoutMs;
    this.handshakeTimer =
      handshake > 0
        ? setTimeout(() => {
            if (this.session.msize === 0) this.drop(`no version agreed within ${handshake} ms`);
          }, handshake).unref()
        : null;
    input.on('data', (chunk: Buffer) => {
      this.deliver(() => this.splitter.push(chunk));
      this.watchFrameProgress();
    });
    input.on('end', () => this.end());
    input.on('close', () => this.end());
    input.on('error', () => this.end());
    output.on('drain', () => this.setBacklogged(false));
    output.on('error', () => this.end());
    output.on('close', () => this.end());
  }

  /** Hand frames to the session, writing the replies they get at once together afterwards. */
  private deliver(frames: () => void): void {
    if (this.delivering) {
      frames();
      return;
    }
    this.delivering = true;
    try {
      frames();
    } finally {
      this.delivering = false;
      if (this.corkedForRead) {
        this.corkedForRead = false;
        this.output.uncork();
      }
    }
  }

  private send(frame: Buffer, written?: () => void): void {
    if (this.over) {
      written?.();
      return;
    }
    if (this.delivering) {
      if (!this.corkedForRead) {
        this.corkedForRead = true;
        this.output.cork();
      }
    } else if (!this.corked && this.session.inProgress > 0) {
      this.corked = true;
      this.output.cork();
      setImmediate(() => {
        this.corked = false;
        this.output.uncork();
      });
    }
    // write() answers false once the output holds more than its high-water mark, and 'drain'
    // follows when it has emptied; the limit is at least that mark, so 'drain' always comes.
    // The callback runs once the chunk is written, or with an error once the stream is destroyed.
    const queued = written ? this.output.write(frame, () => written()) : this.output.write(frame);
    if (!queued && this.output.writableLength > this.limits.maxQueuedReplyBytes) this.setBacklogged(true);
  }

  private setBusy(busy: boolean): void {
    if (this.busy === busy) return;
    this.busy = busy;
    this.updateReading();
  }

  private setBacklogged(backlogged: boolean): void {
    if (this.backlogged === backlogged) return;
    this.backlogged = backlogged;
    this.updateReading();
  }

  private get reading(): boolean {
    return !this.over && !this.busy && !this.backlogged;
  }

  private updateReading(): void {
    if (this.over) return;
    if (!this.reading) {
      this.splitter.hold();
      this.input.pause();
    } else {
      // Frames that waited go first; they may fill the session again.
      this.deliver(() => this.splitter.release());
      if (this.reading) this.input.resume();
    }
    this.watchFrameProgress();
  }

  /** Time a partly received frame, but only while we read: a paused peer cannot make progress. */
  private watchFrameProgress(): void {
    if (!this.reading || !this.splitter.midFrame) {
      if (this.frameTimer) clearTimeout(this.frameTimer);
      this.frameTimer = null;
    } else if (this.frameTimer) {
      this.frameTimer.refresh();
    } else {
      const ms = this.limits.frameTimeoutMs;
      this.frameTimer = setTimeout(() => this.drop(`a partly received frame made no progress for ${ms} ms`), ms).unref();
    }
  }

  private drop(reason: string): void {
    if (this.over) return;
    this.server.context.log.warn({ connection: this.session.id, reason }, 'closing connection');
    this.end();
  }

  /** Stop serving: close both directions and release everything the session held. */
  end(): void {
    if (this.over) return;
    this.over = true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.input.destroy();
    if ((this.output as unknown) !== this.input) this.output.end();
    void this.server.closeSession(this.session).then(this.resolveClosed);
  }
}
