/**
 * Scratch buffers of one size shared by every caller: a few are kept for reuse and any more are
 * allocated for the call and dropped after, so what is kept does not grow with open files.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    /** Buffers kept for reuse: about as many as can be in use at once (the thread pool's size). */
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }
}
