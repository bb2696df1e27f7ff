import type { Credentials, Node, OpenFile } from '../backend.js';
import { Refcounted } from '../refcounted.js';
import type { Qid } from '../../protocol/qid.js';
import { close, StatIndex as S, type RawStat } from './sys.js';
import type { NodeTable } from './node-table.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/**
 * The directory entry a node was last reached by, kept current by NodePlaces: `entry` names its
 * directory's node (held, so it stays known) and its name there. A node is reopened from its entry
 * after its descriptor was reclaimed, and mapped-file finds its metadata there. The export root
 * has its own kind; an object unlinked while held keeps, under mapped-file, the last metadata in
 * memory (`kept`); `none` is an object whose name is not known (reached by "..", or unlinked).
 */
export type Place =
  | { readonly kind: 'none' }
  | { readonly kind: 'root' }
  | { readonly kind: 'entry'; readonly parent: LocalNode; readonly name: Buffer }
  | { readonly kind: 'kept'; readonly meta: BigUint64Array };

export const NO_PLACE: Place = { kind: 'none' };

/**
 * A host object, one per (dev, ino) however many fids name it (see NodeTable). It is held by an
 * O_PATH descriptor that names the object itself, not a path to it; when idle, the descriptor may
 * be given back and reopened from the node's entry on next use. So the descriptor is reached only
 * through {@link withFd}, which keeps it open until the work that uses it has finished.
 */
export class LocalNode extends Refcounted implements Node {
  /** Set only through NodePlaces. */
  place: Place = NO_PLACE;
  /** Requests inside withFd now; a node in use is never reclaimed. */
  uses = 0;
  /** Open files of this object: a reclaimed node is reopened through one of them first (it may be unlinked). */
  readonly openFiles = new Set<LocalOpenFile>();
  /** The reopen in progress, shared by every request that needs the descriptor meanwhile. */
  reopening: Promise<number> | null = null;

  constructor(
    private readonly table: NodeTable,
    /** O_PATH|O_NOFOLLOW descriptor, -1 while reclaimed; read only by NodeTable (everyone else: withFd). */
    public descriptor: number,
    readonly dev: bigint,
    readonly ino: bigint,
    /** File type bits (S_IFMT) on the host — fixed for an inode's life. */
    readonly format: number,
    /** Birth time (statx btime, sec·10⁹+nsec; 0 where the filesystem has none): with dev and ino, tells a reused inode number apart. */
    readonly birth: bigint,
    /** File type bits as the guest sees it (the security model's view: a mapped symlink is a host file), as of the latest lookup. */
    public guestFormat: number,
    /** As of the latest lookup that reached the object. */
    public qid: Qid,
  ) {
    super();
  }

  get isDirectory(): boolean {
    return this.format === S_IFDIR;
  }

  get isRegular(): boolean {
    return this.format === S_IFREG;
  }

  /** Whether a stat is of this very object (not another that took its inode number since). */
  isSameObject(st: RawStat): boolean {
    return st[S.dev] === this.dev && st[S.ino] === this.ino && LocalNode.formatOf(Number(st[S.mode])) === this.format && birthOf(st) === this.birth;
  }

  /** Run fn with the node's descriptor, reopened first if it was reclaimed; it stays open until fn settles. */
  async withFd<T>(fn: (fd: number) => Promise<T>): Promise<T> {
    this.retain();
    try {
      const fd = await this.table.use(this);
      try {
        return await fn(fd);
      } finally {
        this.table.unuse(this);
      }
    } finally {
      this.release();
    }
  }

  /**
   * As {@link withFd}, all at once, when the descriptor is open now and `fn` does not wait;
   * undefined when it is reclaimed (or `fn` answers undefined). The caller holds the node.
   */
  withFdNow<T>(fn: (fd: number) => T | undefined): T | undefined {
    const fd = this.table.useNow(this);
    if (fd < 0) return undefined;
    try {
      return fn(fd);
    } finally {
      this.table.unuse(this);
    }
  }

  protected free(): void {
    this.table.forget(this);
  }

  static formatOf(mode: number): number {
    return mode & S_IFMT;
  }
}

export function birthOf(st: RawStat): bigint {
  return st[S.btimeSec]! * 1_000_000_000n + st[S.btimeNsec]!;
}

/** A regular file or directory opened for I/O; holds its node alive. */
export class LocalOpenFile extends Refcounted implements OpenFile {
  /** Serialises readdir: lseek + getdents on one descriptor must not interleave. */
  dirQueue: Promise<unknown> = Promise.resolve();
  /** Listings queued on {@link dirQueue} and not yet settled: one made at once needs none. */
  dirPending = 0;

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
    node.openFiles.add(this);
  }

  protected free(): void {
    this.node.openFiles.delete(this);
    const closed = this.onClosed;
    close(this.fd)
      .catch(() => {})
      .then(() => closed?.());
    this.node.release();
  }
}
