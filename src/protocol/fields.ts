import type { Qid } from './qid.js';
import { DecodeError, type WireReader, type WireWriter } from './wire.js';

/** One wire field: how big a value is, how to write it and how to read it back. */
export interface Field<T> {
  size(v: T): number;
  write(w: WireWriter, v: T): void;
  read(r: WireReader): T;
}

function fixed<T>(n: number, write: (w: WireWriter, v: T) => void, read: (r: WireReader) => T): Field<T> {
  return { size: () => n, write, read };
}

export const u8: Field<number> = fixed(1, (w, v) => w.u8(v), (r) => r.u8());
export const u16: Field<number> = fixed(2, (w, v) => w.u16(v), (r) => r.u16());
export const u32: Field<number> = fixed(4, (w, v) => w.u32(v), (r) => r.u32());
/** 64-bit fields are bigint end to end: never rounded past 2^53, never cut at 2^32. */
export const u64: Field<bigint> = fixed(8, (w, v) => w.u64(v), (r) => r.u64());

/** A [s] field whose bytes matter as bytes (file names, link targets, xattr names): a view, not a copy. */
export const bytes16: Field<Buffer> = {
  size: (v) => 2 + v.length,
  write(w, v) {
    if (v.length > 0xffff) throw new RangeError(`string of ${v.length} bytes does not fit a 9P string`);
    w.u16(v.length);
    w.bytes(v);
  },
  read: (r) => r.bytes(r.u16()),
};

/** A [s] field that is text (version, uname, aname, lock client id). */
export const str: Field<string> = {
  size: (v) => 2 + Buffer.byteLength(v),
  write: (w, v) => bytes16.write(w, Buffer.from(v)),
  read: (r) => bytes16.read(r).toString('utf8'),
};

export const qid: Field<Qid> = fixed(
  13,
  (w, v) => {
    w.u8(v.type);
    w.u32(v.version);
    w.u64(v.path);
  },
  (r) => ({ type: r.u8(), version: r.u32(), path: r.u64() }),
);

/** count[2] followed by that many items; `limit` bounds count before anything is allocated. */
export function array16<T>(item: Field<T>, limit: number): Field<T[]> {
  return {
    size: (v) => v.reduce((n, x) => n + item.size(x), 2),
    write(w, v) {
      w.u16(v.length);
      for (const x of v) item.write(w, x);
    },
    read(r) {
      const n = r.u16();
      if (n > limit) throw new DecodeError(`array of ${n} items exceeds the limit of ${limit}`);
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = item.read(r);
      return out;
    },
  };
}

/** count[4] followed by that many bytes (Rread, Twrite, Rreaddir): a view of the frame, not a copy. */
export const data32: Field<Buffer> = {
  size: (v) => 4 + v.length,
  write(w, v) {
    w.u32(v.length);
    w.bytes(v);
  },
  read: (r) => r.bytes(r.u32()),
};
