import type { Node, OpenFile } from '../backend/backend.js';
import type { Refcounted } from '../backend/refcounted.js';
import { Errno, P9Error } from '../protocol/errno.js';
import type { Cancellation } from './cancellation.js';
import type { Fid } from './fid.js';
import type { Session } from './session.js';

/**
 * One request in progress. Whatever it uses is pinned (retained) synchronously when it starts and
 * released when it ends, so a concurrent Tclunk or disconnect can never close a descriptor under it.
 */
export class RequestContext {
  private readonly pinned: Refcounted[] = [];

  constructor(
    readonly session: Session,
    readonly tag: number,
    private readonly cancellation: Cancellation,
  ) {}

  /** Aborted by Tflush or disconnect; long waits (blocking locks) watch it. */
  get signal(): AbortSignal {
    return this.cancellation.signal;
  }

  fid(id: number): Fid {
    return this.session.fids.get(id);
  }

  pin<T extends Refcounted>(r: T): T {
    r.retain();
    this.pinned.push(r);
    return r;
  }

  /** The fid's object, pinned for this request. */
  node(fid: Fid): Node {
    return this.pin(fid.node);
  }

  /** The fid's open file, pinned; EBADF if the fid was never opened. */
  open(fid: Fid): OpenFile {
    if (!fid.open) throw new P9Error(Errno.EBADF, `fid ${fid.id} is not open`);
    return this.pin(fid.open);
  }

  /** A directory the request will create in or remove from. */
  dir(id: number): Node {
    const f = this.fid(id);
    if (!f.node.isDirectory) throw new P9Error(Errno.ENOTDIR);
    return this.node(f);
  }

  finish(): void {
    for (const r of this.pinned) r.release();
    this.pinned.length = 0;
  }
}
