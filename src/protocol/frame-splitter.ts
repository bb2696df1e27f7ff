import { HEADER_SIZE } from './constants.js';

export interface FrameSink {
  /** A whole frame. It is a view of the socket's chunk when it arrived in one piece, else one copy. */
  frame(frame: Buffer): void;
  /** A frame larger than the limit: its header is known, its body is being skipped. */
  oversized(type: number, tag: number, size: number): void;
  /** A size field too small to hold a header: the stream cannot be resynchronised. */
  malformed(size: number): void;
}

/**
 * Cuts a byte stream into 9P frames, whatever the chunking: frames split across reads are
 * joined, frames merged in one read are separated. Oversized frames are discarded as they
 * stream in, never buffered, so a hostile size costs no memory.
 */
export class FrameSplitter {
  /** A partly received frame, allocated at its full size once its size field is known. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  /** Bytes of a partial size field/header (at most HEADER_SIZE). */
  private head = Buffer.alloc(HEADER_SIZE);
  private headFill = 0;
  private skipping = 0;
  private broken = false;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxSize: () => number,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.broken) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, chunk.length - at);
        this.skipping -= n;
        at += n;
      } else if (this.partial) {
        const n = Math.min(this.partial.length - this.partialFill, chunk.length - at);
        chunk.copy(this.partial, this.partialFill, at, at + n);
        this.partialFill += n;
        at += n;
        if (this.partialFill === this.partial.length) {
          const f = this.partial;
          this.partial = null;
          this.sink.frame(f);
        }
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
    this.partial = Buffer.allocUnsafe(size);
    if (chunk) {
      chunk.copy(this.partial, 0, at);
      this.partialFill = chunk.length - at;
      return chunk.length;
    }
    buf.copy(this.partial, 0, at, at + HEADER_SIZE);
    this.partialFill = HEADER_SIZE;
    if (this.partialFill === size) {
      const f = this.partial;
      this.partial = null;
      this.sink.frame(f);
    }
    return 0;
  }
}
