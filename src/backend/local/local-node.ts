import type { Credentials, Node, OpenFile } from '../backend.js';
import { Refcounted } from '../refcounted.js';
import type { Qid } from '../../protocol/qid.js';
import { close } from './sys.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/**
 * Where a node's metadata is found, for a model that keeps it by name (mapped-file): the entry
 * `name` of the directory node `parent` (held, so its descriptor stays valid), the export root's
 * own, metadata kept in memory for an object unlinked while held, or none (other models, or not
 * known: the host's stat then shows through). See NodePlaces for how it is kept current.
 */
export type Place =
  | { readonly kind: 'none' }
  | { readonly kind: 'root' }
  | { readonly kind: 'entry'; readonly parent: LocalNode; readonly name: Buffer }
  | { readonly kind: 'kept'; readonly meta: BigUint64Array };

export const NO_PLACE: Place = { kind: 'none' };

/** A host object held by an O_PATH descriptor: it names the object itself, not a path to it. */
export class LocalNode extends Refcounted implements Node {
  /** Set only through NodePlaces, which also releases an entry's parent. */
  place: Place = NO_PLACE;
  /** Called when the last holder lets go, before the descriptor closes. */
  onFree: ((node: LocalNode) => void) | null = null;

  constructor(
    /** O_PATH|O_NOFOLLOW descriptor; never read or written through. */
    readonly fd: number,
    readonly dev: bigint,
    readonly ino: bigint,
    /** File type bits (S_IFMT) on the host — fixed for an inode's life. */
    readonly format: number,
    /** File type bits as the guest sees it (the security model's view: a mapped symlink is a host file). */
    readonly guestFormat: number,
    readonly qid: Qid,
  ) {
    super();
  }

  get isDirectory(): boolean {
    return this.format === S_IFDIR;
  }

  get isRegular(): boolean {
    return this.format === S_IFREG;
  }

  protected free(): void {
    this.onFree?.(this);
    close(this.fd).catch(() => {});
  }

  static formatOf(mode: number): number {
    return mode & S_IFMT;
  }
}

/** A regular file or directory opened for I/O; holds its node alive. */
export class LocalOpenFile extends Refcounted implements OpenFile {
  /** Serialises readdir: lseek + getdents on one descriptor must not interleave. */
  dirQueue: Promise<unknown> = Promise.resolve();
  /** getdents buffer reused across Treaddir calls on this directory. */
  direntBuf: Buffer | null = null;

  /** No write has gone through it yet (the mapped model clears setuid/setgid bits on the first). */
  unwritten = true;

  /** Called once its descriptor is closed, set when it has taken a lock: closing released them. */
  onClosed: (() => void) | null = null;

  constructor(
    readonly fd: number,
    readonly node: LocalNode,
    readonly writable: boolean,
    /** Who writes through it, if not root. */
    readonly writer: Credentials | null,
  ) {
    super();
  }

  protected free(): void {
    const closed = this.onClosed;
    close(this.fd)
      .catch(() => {})
      .then(() => closed?.());
    this.node.release();
  }
}
