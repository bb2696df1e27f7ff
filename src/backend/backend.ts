import type { DirentPacker } from '../protocol/dirent.js';
import type { P9Error } from '../protocol/errno.js';
import type { Qid } from '../protocol/qid.js';
import type { Refcounted } from './refcounted.js';

// The contract between the 9P server and a filesystem. The server owns fids, tags, flushes and
// export policy; a backend only does filesystem operations on objects it handed out. Every method
// may run concurrently with any other (the server adds no locking), so implementations work on
// stable object handles, never on paths that a concurrent rename could change under them.

/** Who is asking, in host ids: the attaching user and, for creates, the group the client chose. */
export interface Credentials {
  readonly uid: number;
  readonly gid: number;
  /** Squashed or unmapped: every host operation is to run as this user, without privilege. */
  readonly confined: boolean;
}

/** One filesystem object (file, directory, symlink, device, ...). Survives renames and unlinks. */
export interface Node extends Refcounted {
  readonly qid: Qid;
  readonly isDirectory: boolean;
}

/** An object opened for I/O by Tlopen or Tlcreate. */
export interface OpenFile extends Refcounted {
  readonly node: Node;
  readonly writable: boolean;
}

/** Rgetattr's fields, all of them always filled. */
export interface Attr {
  qid: Qid;
  mode: number;
  uid: number;
  gid: number;
  nlink: bigint;
  rdev: bigint;
  size: bigint;
  blksize: bigint;
  blocks: bigint;
  atimeSec: bigint;
  atimeNsec: bigint;
  mtimeSec: bigint;
  mtimeNsec: bigint;
  ctimeSec: bigint;
  ctimeNsec: bigint;
  btimeSec: bigint;
  btimeNsec: bigint;
  hasBtime: boolean;
}

/** Tsetattr as received: `valid` says which fields apply (SetattrValid bits). */
export interface SetattrRequest {
  valid: number;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  atimeSec: bigint;
  atimeNsec: bigint;
  mtimeSec: bigint;
  mtimeNsec: bigint;
}

export interface Statfs {
  fsType: number;
  bsize: number;
  blocks: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
  fsid: bigint;
  namelen: number;
}

export interface LockRange {
  lockType: number;
  start: bigint;
  length: bigint;
}

export interface WalkResult {
  /** One qid per name walked successfully, in order. */
  qids: Qid[];
  /** The object the last name reached, owned by the caller; null if the walk stopped early. */
  node: Node | null;
  /** Why the walk stopped early, or null if every name was walked. */
  error: P9Error | null;
}

export interface Backend {
  /**
   * Whether the host kernel acts on the modes, file types and security attributes the guest sets
   * (passthrough, none), rather than the model keeping them inert (mapped models).
   */
  readonly actsOnHost: boolean;
  /** The root of the export that `aname` names, for this user. */
  attach(cred: Credentials, aname: string): Promise<Node>;
  walk(from: Node, names: readonly Buffer[]): Promise<WalkResult>;
  /** {@link walk} at once where that needs no waiting (a local filesystem); undefined, having done nothing, otherwise. */
  walkNow?(from: Node, names: readonly Buffer[]): WalkResult | undefined;
  getattr(node: Node, open: OpenFile | null): Promise<Attr>;
  /** {@link getattr} at once where that needs no waiting (a local filesystem); undefined otherwise. */
  getattrNow?(node: Node, open: OpenFile | null): Attr | undefined;
  setattr(node: Node, open: OpenFile | null, req: SetattrRequest): Promise<void>;
  /**
   * Open for I/O; `flags` use the wire's Linux O_* numbering. Only regular files and directories.
   * `cred` is who writes through it: a write by anyone but root clears setuid/setgid bits.
   */
  open(node: Node, flags: number, cred: Credentials): Promise<OpenFile>;
  /** {@link open} at once where that needs no waiting; undefined, having done nothing, otherwise. */
  openNow?(node: Node, flags: number, cred: Credentials): OpenFile | undefined;
  create(dir: Node, name: Buffer, flags: number, mode: number, cred: Credentials): Promise<OpenFile>;
  mkdir(dir: Node, name: Buffer, mode: number, cred: Credentials): Promise<Qid>;
  mknod(dir: Node, name: Buffer, mode: number, major: number, minor: number, cred: Credentials): Promise<Qid>;
  symlink(dir: Node, name: Buffer, target: Buffer, cred: Credentials): Promise<Qid>;
  link(dir: Node, target: Node, name: Buffer): Promise<void>;
  readlink(node: Node): Promise<Buffer>;
  renameat(oldDir: Node, oldName: Buffer, newDir: Node, newName: Buffer): Promise<void>;
  rename(node: Node, newDir: Node, newName: Buffer): Promise<void>;
  unlinkat(dir: Node, name: Buffer, flags: number): Promise<void>;
  remove(node: Node): Promise<void>;
  /** Read into `buf` at `bufOffset`: the reply buffer itself, so data is never copied twice. */
  read(file: OpenFile, offset: bigint, buf: Buffer, bufOffset: number, count: number): Promise<number>;
  /** {@link read} at once where the data is at hand (a local filesystem's page cache); undefined, having read nothing, otherwise. */
  readNow?(file: OpenFile, offset: bigint, buf: Buffer, bufOffset: number, count: number): number | undefined;
  /**
   * Write `data`, the payload in the pieces it arrived in (one, or several for a large frame
   * received in several reads), as one write. A short count is returned as it is.
   */
  write(file: OpenFile, offset: bigint, data: readonly Buffer[]): Promise<number>;
  /**
   * Fill `out` with whole entries starting after `cookie` (0: from the start), as many as fit; the
   * next call resumes from the last offset added. Entries go straight into the reply frame in
   * their wire form: a directory of thousands costs the packing, not objects per entry.
   */
  readdir(file: OpenFile, cookie: bigint, out: DirentPacker): Promise<void>;
  /**
   * {@link readdir} at once where that needs no waiting: true once `out` holds what this reply
   * carries (at least one entry, or none at the directory's end); undefined, with nothing added,
   * otherwise.
   */
  readdirNow?(file: OpenFile, cookie: bigint, out: DirentPacker): boolean | undefined;
  fsync(file: OpenFile, datasync: boolean): Promise<void>;
  statfs(node: Node): Promise<Statfs>;
  /** Try to take or release a byte-range lock without waiting: true if granted. */
  lock(file: OpenFile, range: LockRange): Promise<boolean>;
  /**
   * Take a byte-range lock, waiting as long as it takes: woken when this backend releases a lock
   * on the same object, never by polling it. Rejects EINTR once `signal` aborts.
   */
  waitLock(file: OpenFile, range: LockRange, signal: AbortSignal): Promise<void>;
  /** The first lock that would conflict with `range`, or lockType UNLCK if none. */
  getlock(file: OpenFile, range: LockRange): Promise<LockRange>;
  xattrGet(node: Node, name: Buffer): Promise<Buffer>;
  /** Attribute names, each NUL-terminated, as listxattr(2) returns them. */
  xattrList(node: Node): Promise<Buffer>;
  xattrSet(node: Node, name: Buffer, value: Buffer, flags: number): Promise<void>;
  xattrRemove(node: Node, name: Buffer): Promise<void>;
  /**
   * Run `fn` (a whole request) with every host operation done as `cred`'s user and without
   * privilege, where the backend's model acts on the host with the guest's ids (passthrough,
   * none); a mapped model, which never gives the guest host privilege, just runs it.
   */
  confine<T>(cred: Credentials, fn: () => T | Promise<T>): T | Promise<T>;
  /** Release everything (export root descriptors); called once when the server shuts down. */
  close(): Promise<void>;
}

