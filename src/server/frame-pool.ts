/**
 * Large reply frames (Rread, Rreaddir), reused. A fresh 1 MiB frame per Tread cost page faults
 * and a cold cache each time, and the Linux client asks for a whole msize however small the
 * file. A frame is lent to one reply and comes back once the transport has written it (or the
 * reply copied out what little it held); at most `keep` wait unused.
 */
export class FramePool {
  private readonly free: ArrayBuffer[] = [];
  /** Frames out on loan: each comes back at most once, so no two replies ever share one. */
  private readonly lent = new WeakSet<ArrayBuffer>();

  constructor(
    /** The largest frame (the msize cap): every pooled frame has this capacity. */
    readonly frameSize: number,
    private readonly keep = 8,
  ) {}

  /**
   * A buffer of `size` bytes, uninitialised: a pooled frame if it needs more than half of one
   * (smaller ones are allocated to size, so a full reply never holds twice its bytes), else a
   * fresh one.
   */
  take(size: number): Buffer {
    if (size <= this.frameSize / 2 || size > this.frameSize) return Buffer.allocUnsafe(size);
    const memory = this.free.pop() ?? new ArrayBuffer(this.frameSize);
    this.lent.add(memory);
    return Buffer.from(memory, 0, size);
  }

  /** Whether `frame` (or any view of it) is on loan from this pool. */
  lends(frame: Buffer): boolean {
    return this.lent.has(frame.buffer as ArrayBuffer);
  }

  /** Take back a frame on loan (any view of it); anything else is left to the collector. */
  give(frame: Buffer): void {
    const memory = frame.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.lent.has(memory)) return;
    this.lent.delete(memory);
    if (this.free.length < this.keep) this.free.push(memory);
  }
}
