import { HEADER_SIZE } from './constants.js';

export interface FrameSink {
  /** A whole frame. It is a view of the socket's chunk when it arrived in one piece, else one copy. */
  frame(frame: Buffer): void;
  /**
   * A whole frame of `size` bytes that arrived in several pieces, in order (views of the chunks,
   * and the splitter's own staging buffers): given, when this is present, instead of joining them
   * for `frame`. The pieces are the sink's from then on.
   */
  pieces?(pieces: Buffer[], size: number): void;
  /** A frame larger than the limit: its header is known, its body is being skipped. */
  oversized(type: number, tag: number, size: number): void;
  /** A size field too small to hold a header: the stream cannot be resynchronised. */
  malformed(size: number): void;
}

/**
 * Bytes of a partial frame copied into a buffer of the splitter's own (at most this much more than
 * received); pieces as large as this are kept as views of the chunk they came in, and the frame is
 * joined once, when complete. Joining into a buffer that doubled as bytes came copied each byte
 * of a 1 MiB Twrite twice over (and faulted in fresh pages at each doubling).
 */
const STAGING_SIZE = 16 << 10;

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
   * A partly received frame, in pieces: views of large parts of chunks, and staging buffers of
   * STAGING_SIZE filled with the small parts. It holds little more than the bytes received (a
   * staging buffer more at most): a header announcing msize costs nothing until the bytes come.
   */
  private partial: Buffer[] | null = null;
  private partialSize = 0;
  private partialFill = 0;
  /** Bytes used of the last piece when it is a staging buffer; -1 when it is a view. */
  private stagingFill = -1;
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
    this.partial = [];
    this.partialSize = size;
    this.partialFill = 0;
    this.stagingFill = -1;
    if (chunk) {
      this.appendPartial(chunk, at, chunk.length - at);
      return chunk.length;
    }
    this.appendPartial(buf, at, HEADER_SIZE);
    if (this.partialFill === size) this.finishPartial();
    return 0;
  }

  private appendPartial(from: Buffer, at: number, n: number): void {
    const pieces = this.partial!;
    this.partialFill += n;
    if (n >= STAGING_SIZE) {
      // Kept as a view: a chunk's buffer is the socket's read, about this size, not a larger one.
      if (this.stagingFill >= 0) pieces[pieces.length - 1] = pieces[pieces.length - 1]!.subarray(0, this.stagingFill);
      pieces.push(from.subarray(at, at + n));
      this.stagingFill = -1;
      return;
    }
    while (n > 0) {
      let staging = pieces[pieces.length - 1];
      if (this.stagingFill < 0 || this.stagingFill === staging!.length) {
        staging = Buffer.allocUnsafe(Math.min(STAGING_SIZE, this.partialSize - (this.partialFill - n)));
        pieces.push(staging);
        this.stagingFill = 0;
      }
      const k = Math.min(n, staging!.length - this.stagingFill);
      from.copy(staging!, this.stagingFill, at, at + k);
      this.stagingFill += k;
      at += k;
      n -= k;
    }
  }

  private finishPartial(): void {
    const pieces = this.partial!;
    this.partial = null;
    const last = pieces[pieces.length - 1]!;
    if (this.stagingFill >= 0) pieces[pieces.length - 1] = last.subarray(0, this.stagingFill);
    if (pieces.length === 1) this.sink.frame(pieces[0]!);
    else if (this.sink.pieces) this.sink.pieces(pieces, this.partialSize);
    else this.sink.frame(Buffer.concat(pieces, this.partialSize));
  }
}
