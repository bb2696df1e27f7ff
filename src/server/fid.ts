import { setMaxListeners } from 'node:events';
import type { Credentials, Node, OpenFile } from '../backend/backend.js';
import type { ByteBudget } from './byte-budget.js';

/** A value being assembled by Txattrcreate + Twrite, set when the fid is clunked. */
export interface PendingXattr {
  name: Buffer;
  value: Buffer;
  flags: number;
  written: number;
}

/**
 * A client's handle on a filesystem object. It names the object, not a path, so renames and
 * unlinks elsewhere leave it working. It holds one reference on its node (and open file).
 */
export class Fid {
  open: OpenFile | null = null;
  /** Txattrwalk's result, read back with Tread. */
  xattrValue: Buffer | null = null;
  xattrPending: PendingXattr | null = null;
  /** What the xattr value above holds of the connection's budget, returned on release. */
  private held: { budget: ByteBudget; bytes: number } | null = null;
  /** Made on first use: most fids never have a request waiting on them. */
  private releasedController: AbortController | null = null;
  private gone = false;

  constructor(
    readonly id: number,
    public node: Node,
    /** Who attached, as built once by the attach (see identity.ts); every fid walked from it keeps them. */
    readonly cred: Credentials,
  ) {}

  get isPlain(): boolean {
    return this.open === null && this.xattrValue === null && this.xattrPending === null;
  }

  /** Account for an xattr value this fid is about to hold; throws ENOSPC over the budget. */
  holdXattrBytes(budget: ByteBudget, bytes: number): void {
    budget.reserve(bytes);
    this.held = { budget, bytes };
  }

  /** Aborted when the fid is clunked, removed or dropped with its connection: a wait on it ends. */
  get released(): AbortSignal {
    if (this.gone) return AbortSignal.abort();
    if (!this.releasedController) {
      this.releasedController = new AbortController();
      // Every blocking request on the fid listens: many at once is normal, not a leak.
      setMaxListeners(0, this.releasedController.signal);
    }
    return this.releasedController.signal;
  }

  /** Drop the fid's own references; pinned requests keep theirs until they finish. */
  release(): void {
    this.gone = true;
    this.releasedController?.abort();
    this.held?.budget.release(this.held.bytes);
    this.held = null;
    this.open?.release();
    this.open = null;
    this.node.release();
  }
}
