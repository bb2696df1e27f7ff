const PAGE = 4096;
/** A copy whose destination lies fewer bytes than this past its source (within a page) is slow. */
const SLOW_DISTANCE = 32;

/** Where a buffer's first byte lies within its memory page (the addon knows; JavaScript cannot). */
export type AddressInPage = (bytes: Uint8Array) => number;

interface PooledMemory {
  memory: ArrayBuffer;
  /** addressInPage of the memory's first byte. */
  base: number;
}

/**
 * Large reply frames (Rread, Rreaddir), reused. A fresh 1 MiB frame per Tread cost page faults
 * and a cold cache each time, and the Linux client asks for a whole msize however small the
 * file. A frame is lent to one reply and comes back once the transport has written it (or the
 * reply copied out what little it held); at most `keep` wait unused.
 *
 * A pooled frame that receives file data is placed so that its data lies where the file offset
 * lies within a memory page: the kernel's copy out of the page cache is then aligned. On AMD EPYC
 * (Zen) a copy whose destination lies 1 to 31 bytes past its source within a page runs about five
 * times slower (a 1 MiB pread 2.2 against 12 GB/s here), and the data of a pooled frame, 11 bytes
 * into memory that malloc hands out 16 bytes into a page, lay 27 bytes past every page-aligned
 * offset: a 1 MiB Tread at offset 0 cost twice the server CPU it does placed. Fresh frames are
 * not placed: their memory lies anywhere in a page, so they meet the slow distances rarely.
 */
export class FramePool {
  private readonly free: PooledMemory[] = [];
  /** Frames out on loan: each comes back at most once, so no two replies ever share one. */
  private readonly lent = new WeakMap<ArrayBuffer, PooledMemory>();

  constructor(
    /** The largest frame (the msize cap): every pooled frame has this capacity. */
    readonly frameSize: number,
    private readonly keep = 8,
    /** Without it frames are not placed. */
    private readonly addressInPage: AddressInPage | null = null,
  ) {}

  /**
   * A buffer of `size` bytes, uninitialised: a pooled frame if it needs more than half of one
   * (smaller ones are allocated to size, so a full reply never holds twice its bytes), else a
   * fresh one. With `placedAt`, a pooled frame's byte at `placedAt` lies at `pageOffset` within
   * its memory page, or 64 bytes on (see startFor), when the pool was given `addressInPage`.
   */
  take(size: number, placedAt = -1, pageOffset = 0): Buffer {
    if (size <= this.frameSize / 2 || size > this.frameSize) return Buffer.allocUnsafe(size);
    const pooled = this.free.pop() ?? this.allocate();
    this.lent.set(pooled.memory, pooled);
    const start = placedAt >= 0 && this.addressInPage ? startFor(pooled.base, placedAt, pageOffset) : 0;
    return Buffer.from(pooled.memory, start, size);
  }

  /** Whether `frame` (or any view of it) is on loan from this pool. */
  lends(frame: Buffer): boolean {
    return this.lent.has(frame.buffer as ArrayBuffer);
  }

  /** Take back a frame on loan (any view of it); anything else is left to the collector. */
  give(frame: Buffer): void {
    const memory = frame.buffer;
    if (!(memory instanceof ArrayBuffer)) return;
    const pooled = this.lent.get(memory);
    if (!pooled) return;
    this.lent.delete(memory);
    if (this.free.length < this.keep) this.free.push(pooled);
  }

  private allocate(): PooledMemory {
    // A page of slack: room to place the frame anywhere within a page.
    const memory = new ArrayBuffer(this.frameSize + (this.addressInPage ? PAGE - 1 : 0));
    return { memory, base: this.addressInPage ? this.addressInPage(new Uint8Array(memory, 0, 1)) : 0 };
  }
}

/**
 * The offset into memory starting at page offset `base` that puts byte `at` at `pageOffset`,
 * unless that puts the frame's first byte within the last 32 of a page: the socket copies the
 * frame into buffers that mostly begin at a page's start, and that copy would be the slow one.
 * Then the frame moves 64 bytes on, 64 bytes from its data's place: both copies fast.
 */
function startFor(base: number, at: number, pageOffset: number): number {
  const start = mod(pageOffset - base - at);
  return mod(base + start) > PAGE - SLOW_DISTANCE ? mod(start + 2 * SLOW_DISTANCE) : start;
}

function mod(n: number): number {
  return ((n % PAGE) + PAGE) % PAGE;
}
