import { Errno, P9Error } from '../protocol/errno.js';
import type { Fid } from './fid.js';

/** The fids of one connection; lookups are O(1) whatever the count. */
export class FidTable {
  private readonly fids = new Map<number, Fid>();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.fids.size;
  }

  get(id: number): Fid {
    const f = this.fids.get(id);
    if (!f) throw new P9Error(Errno.EBADF, `unknown fid ${id}`);
    return f;
  }

  has(id: number): boolean {
    return this.fids.has(id);
  }

  /** Whether `fid` is still the table's entry for its id: false once clunked, removed or replaced. */
  holds(fid: Fid): boolean {
    return this.fids.get(fid.id) === fid;
  }

  /** Throws before any work is done if `id` cannot become a new fid. */
  checkNew(id: number): void {
    if (this.fids.has(id)) throw new P9Error(Errno.EINVAL, `fid ${id} is already in use`);
    if (this.fids.size >= this.limit) throw new P9Error(Errno.EMFILE, `connection has reached its limit of ${this.limit} fids`);
  }

  add(fid: Fid): void {
    this.checkNew(fid.id);
    this.fids.set(fid.id, fid);
  }

  /** Remove and return the fid; its references are the caller's to release. */
  take(id: number): Fid {
    const f = this.get(id);
    this.fids.delete(id);
    return f;
  }

  /** Replace in place (fid == newfid walks). */
  set(fid: Fid): void {
    this.fids.set(fid.id, fid);
  }

  clear(): Fid[] {
    const all = [...this.fids.values()];
    this.fids.clear();
    return all;
  }
}
