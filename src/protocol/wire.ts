import { Errno, P9Error } from './errno.js';

/** Raised for any frame that cannot be decoded. Decoding never throws anything else. */
export class DecodeError extends P9Error {
  constructor(message: string) {
    super(Errno.EPROTO, message);
    this.name = 'DecodeError';
  }
}

/**
 * Reads little-endian fields from one frame. Every read is checked against the bytes present
 * before anything is allocated, so a hostile length can never make us allocate or over-read.
 */
export class WireReader {
  offset: number;

  constructor(
    readonly buf: Buffer,
    offset = 0,
    readonly end = buf.length,
  ) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): number {
    const at = this.offset;
    if (n > this.end - at) throw new DecodeError(`truncated ${what}: need ${n} bytes at ${at}, have ${this.end - at}`);
    this.offset = at + n;
    return at;
  }

  u8(): number {
    return this.buf[this.need(1, 'u8')]!;
  }
  u16(): number {
    return this.buf.readUInt16LE(this.need(2, 'u16'));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.need(4, 'u32'));
  }
  u64(): bigint {
    return this.buf.readBigUInt64LE(this.need(8, 'u64'));
  }
  /** A view of the next n bytes, not a copy: valid while the frame is. */
  bytes(n: number): Buffer {
    const at = this.need(n, 'bytes');
    return this.buf.subarray(at, at + n);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Writes little-endian fields into a buffer sized exactly by the caller. */
export class WireWriter {
  offset: number;

  constructor(
    readonly buf: Buffer,
    offset = 0,
  ) {
    this.offset = offset;
  }

  u8(v: number): void {
    this.buf[this.offset++] = v;
  }
  u16(v: number): void {
    this.offset = this.buf.writeUInt16LE(v, this.offset);
  }
  u32(v: number): void {
    this.offset = this.buf.writeUInt32LE(v >>> 0, this.offset);
  }
  /** Most 64-bit values (sizes, times, inode numbers) fit a double: written as two halves without making a BigInt. */
  u64(v: bigint): void {
    if (v >= 0n && v <= MAX_SAFE) {
      const n = Number(v);
      this.buf.writeUInt32LE(n >>> 0, this.offset);
      this.buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), this.offset + 4);
      this.offset += 8;
    } else {
      this.offset = this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.offset);
    }
  }
  bytes(v: Uint8Array): void {
    this.buf.set(v, this.offset);
    this.offset += v.length;
  }
}
