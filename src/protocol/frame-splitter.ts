import { HEADER_SIZE } from './constants.js';

export interface FrameSink {
  /** A whole frame. It is a view of the socket's chunk when it arrived in one piece, else one copy. */
  frame(frame: Buffer): void;
  /** A frame larger than the limit: its header is known, its body is being skipped. */
  oversized(type: number, tag: number, size: number): void;
  /** A size field too small to hold a header: the stream cannot be resynchronised. */
  malformed(size: number): void;
}

/** The first buffer of a partial frame; it doubles as bytes arrive, up to the announced size. */
const FIRST_PARTIAL_SIZE = 4096;

/**
 * Cuts a byte stream into 9P frames, whatever the chunking: frames split across reads are
 * joined, frames merged in one read are separated. Oversized frames are discarded as they
 * stream in, never buffered, so a hostile size costs no memory.
 *
 * Dispatch can be held (`hold`) between two frames, say while the server has enough to do: the
 * rest of the chunk then waits, unsplit, until `release`. Pausing the stream alone would not do,
 * since one read may bring thousands of frames.
 */
export class FrameSplitter {
  /**
   * A partly received frame. Its buffer grows with the bytes received (to at most twice them, or
   * 4 KiB): a header announcing msize costs nothing until the bytes come.
   */
  private partial: Buffer | null = null;
  private partialSize = 0;
  private partialFill = 0;
  /** Bytes of a partial size field/header (at most HEADER_SIZE). */
  private head = Buffer.alloc(HEADER_SIZE);
  private headFill = 0;
  private skipping = 0;
  private broken = false;
  private held = false;
  private splitting = false;
  /** Chunks (or the rest of one) not yet split, while held. */
  private readonly waiting: Buffer[] = [];

  constructor(
    private readonly sink: FrameSink,
    private readonly maxSize: () => number,
  ) {}

  /** Part of a frame has arrived and the rest has not (held chunks aside). */
  get midFrame(): boolean {
    return this.partial !== null || this.headFill > 0 || this.skipping > 0;
  }

  push(chunk: Buffer): void {
    this.waiting.push(chunk);
    this.splitWaiting();
  }

  /** Dispatch no further frame until `release`; takes effect after the frame being dispatched. */
  hold(): void {
    this.held = true;
  }

  /** Dispatch again, starting with whatever waited. */
  release(): void {
    this.held = false;
    this.splitWaiting();
  }

  private splitWaiting(): void {
    // A release from inside a sink callback lets the loop below carry on; it must not recurse.
    if (this.splitting) return;
    this.splitting = true;
    try {
      while (!this.held && !this.broken && this.waiting.length > 0) {
        const chunk = this.waiting[0]!;
        const at = this.split(chunk);
        if (at < chunk.length) this.waiting[0] = chunk.subarray(at);
        else this.waiting.shift();
      }
      if (this.broken) this.waiting.length = 0;
    } finally {
      this.splitting = false;
    }
  }

  /** Split frames out of `chunk` until it is used up or dispatch is held; returns where it stopped. */
  private split(chunk: Buffer): number {
    let at = 0;
    while (at < chunk.length && !this.broken && !this.held) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, chunk.length - at);
        this.skipping -= n;
        at += n;
      } else if (this.partial) {
        const n = Math.min(this.partialSize - this.partialFill, chunk.length - at);
        this.appendPartial(chunk, at, n);
        at += n;
        if (this.partialFill === this.partialSize) this.finishPartial();
      } else if (this.headFill > 0 || chunk.length - at < HEADER_SIZE) {
        const n = Math.min(HEADER_SIZE - this.headFill, chunk.length - at);
        chunk.copy(this.head, this.headFill, at, at + n);
        this.headFill += n;
        at += n;
        if (this.headFill === HEADER_SIZE) {
          this.headFill = 0;
          this.startFrame(this.head, 0, null);
        }
      } else {
        at = this.startFrame(chunk, at, chunk);
      }
    }
    return at;
  }

  /** Begin a frame whose header sits at buf[at..at+7]. Returns where the caller resumes in `chunk`. */
  private startFrame(buf: Buffer, at: number, chunk: Buffer | null): number {
    const size = buf.readUInt32LE(at);
    if (size < HEADER_SIZE) {
      this.broken = true;
      this.sink.malformed(size);
      return chunk ? chunk.length : 0;
    }
    if (size > this.maxSize()) {
      this.skipping = size - HEADER_SIZE;
      this.sink.oversized(buf[at + 4]!, buf.readUInt16LE(at + 5), size);
      return at + HEADER_SIZE;
    }
    if (chunk && chunk.length - at >= size) {
      this.sink.frame(chunk.subarray(at, at + size));
      return at + size;
    }
    this.partial = Buffer.allocUnsafe(Math.min(size, FIRST_PARTIAL_SIZE));
    this.partialSize = size;
    this.partialFill = 0;
    if (chunk) {
      this.appendPartial(chunk, at, chunk.length - at);
      return chunk.length;
    }
    this.appendPartial(buf, at, HEADER_SIZE);
    if (this.partialFill === size) this.finishPartial();
    return 0;
  }

  private appendPartial(from: Buffer, at: number, n: number): void {
    const need = this.partialFill + n;
    if (need > this.partial!.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.partialSize, Math.max(need, 2 * this.partial!.length)));
      this.partial!.copy(grown, 0, 0, this.partialFill);
      this.partial = grown;
    }
    from.copy(this.partial!, this.partialFill, at, at + n);
    this.partialFill = need;
  }

  private finishPartial(): void {
    const f = this.partial!;
    this.partial = null;
    this.sink.frame(f);
  }
}
