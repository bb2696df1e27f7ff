import type { Qid } from './qid.js';
import { WireReader } from './wire.js';

/** One Rreaddir entry: qid[13] offset[8] type[1] name[s]. */
export interface Dirent {
  qid: Qid;
  offset: bigint;
  type: number;
  name: Buffer;
}

/** Bytes an entry with this name occupies in Rreaddir data. */
export function direntSize(nameLength: number): number {
  return 24 + nameLength;
}

/**
 * Packs whole entries into a region of a reply buffer; an entry that does not fit is refused
 * (never truncated: the client turns a cut entry into EIO).
 */
export class DirentPacker {
  private at: number;

  constructor(
    private readonly buf: Buffer,
    private readonly start: number,
    private readonly limit: number,
  ) {
    this.at = start;
  }

  get length(): number {
    return this.at - this.start;
  }

  /** Where the next entry goes in {@link buffer}, and the bytes left for entries. */
  get position(): number {
    return this.at;
  }

  get room(): number {
    return this.limit - this.length;
  }

  get buffer(): Buffer {
    return this.buf;
  }

  /** Count `bytes` of whole entries another writer put at {@link position}. */
  advance(bytes: number): void {
    if (!(Number.isInteger(bytes) && bytes >= 0 && bytes <= this.room)) throw new RangeError(`cannot advance ${bytes} bytes with ${this.room} left`);
    this.at += bytes;
  }

  /** Append one entry; false when it does not fit in what is left. */
  add(qidType: number, qidVersion: number, qidPath: bigint, offset: bigint, type: number, name: Uint8Array): boolean {
    const need = direntSize(name.length);
    if (this.at - this.start + need > this.limit) return false;
    const b = this.buf;
    let p = this.at;
    b[p] = qidType;
    b.writeUInt32LE(qidVersion >>> 0, p + 1);
    b.writeBigUInt64LE(qidPath, p + 5);
    b.writeBigUInt64LE(BigInt.asUintN(64, offset), p + 13);
    b[p + 21] = type;
    b.writeUInt16LE(name.length, p + 22);
    b.set(name, p + 24);
    this.at = p + need;
    return true;
  }
}

/** Parse Rreaddir data into entries (names are views of `data`). */
export function parseDirents(data: Buffer): Dirent[] {
  const r = new WireReader(data);
  const out: Dirent[] = [];
  while (r.remaining > 0) {
    const qid = { type: r.u8(), version: r.u32(), path: r.u64() };
    const offset = r.u64();
    const type = r.u8();
    const name = r.bytes(r.u16());
    out.push({ qid, offset, type, name });
  }
  return out;
}

