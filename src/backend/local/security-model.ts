import type { Credentials } from '../backend.js';
import type { MetaAt, MetaSource, RawStat } from './sys.js';

/** What the guest sees of a host object: its type and permission bits, owner and device number. */
export interface GuestView {
  /** File type (S_IFMT bits) and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  rdev: bigint;
  nlink: bigint;
}

export const securityModelNames = ['passthrough', 'mapped-xattr', 'mapped-file', 'none'] as const;
export type SecurityModelName = (typeof securityModelNames)[number];

/**
 * An object as a model acts on it, for the length of one call: its O_PATH descriptor and, for a
 * model that keeps metadata by name (mapped-file), where that metadata is.
 */
export interface ModelTarget {
  readonly fd: number;
  /** The directory entry the object was reached by (its directory held open for the call); null if not known. */
  readonly at: MetaAt | null;
  /**
   * By-name metadata of an object unlinked while held (StatIndex.metaFound..metaRdev), kept in
   * memory because its name, and so its metadata file, is gone; a model updates it in place.
   */
  readonly kept: BigUint64Array | null;
}

/**
 * The one road between the guest's view of the export and the host's: every create (mode, type,
 * owner, device number), readlink, getattr (type, mode, owner, rdev, and so the qid type),
 * chmod, chown, xattr (names and values), readdir entry (its type, or that it is hidden), link,
 * rename and unlink goes through the model, so a model decides all of them and nothing bypasses
 * it. Objects are named by descriptors (O_PATH or open) or by a directory descriptor and a
 * checked name; the backend owns both.
 */
export interface SecurityModel {
  readonly name: SecurityModelName;
  /** Guest ids are host ids (passthrough, none): confining a user means acting as it on the host. */
  readonly hostIds: boolean;
  /** Metadata the addon reads along with every stat (mapped models), so getattr and walk stay one hop. */
  readonly meta: MetaSource;
  /** Metadata is found by name (mapped-file): the backend must know each object's directory entry. */
  readonly byName: boolean;
  /** A stat of `fd` (default: the target's own) with the target's metadata, for {@link view}. */
  stat(target: ModelTarget, fd?: number): Promise<RawStat>;
  /**
   * {@link stat} of a descriptor alone (a target with neither `at` nor `kept`), taken at once
   * (sys.fstatNow); undefined when that would wait, or when the model needs more than the
   * descriptor to find the metadata.
   */
  statNow(fd: number): RawStat | undefined;
  /** The guest's view of a stat taken with {@link meta}. */
  view(st: RawStat): GuestView;
  /** Names the model keeps for itself: hidden from readdir and refused (EINVAL) wherever a guest names something. */
  readonly reservedNames: readonly Buffer[];
  /** Whether `name` is one of {@link reservedNames}. */
  isReserved(name: Uint8Array): boolean;
  /** Create and open a new regular file (O_EXCL); resolves its open descriptor. */
  createFile(dirFd: number, name: Buffer, hostFlags: number, mode: number, cred: Credentials): Promise<number>;
  mkdir(dirFd: number, name: Buffer, mode: number, cred: Credentials): Promise<void>;
  /** `mode` carries the type: S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO or S_IFSOCK. */
  mknod(dirFd: number, name: Buffer, mode: number, rdev: bigint, cred: Credentials): Promise<void>;
  symlink(dirFd: number, name: Buffer, target: Buffer, cred: Credentials): Promise<void>;
  /** Hard-link the target as dirFd/name. */
  link(target: ModelTarget, dirFd: number, name: Buffer): Promise<void>;
  /** Move an entry, replacing any at the new name unless `flags` is RENAME_NOREPLACE (then EEXIST). */
  rename(oldDirFd: number, oldName: Buffer, newDirFd: number, newName: Buffer, flags?: number): Promise<void>;
  /** Remove an entry; flags 0 or AT_REMOVEDIR. */
  unlink(dirFd: number, name: Buffer, flags: number): Promise<void>;
  /** The target of an object the guest sees as a symlink; `hostFormat` is its type on the host. */
  readlink(fd: number, hostFormat: number): Promise<Buffer>;
  /** Set the permission bits (07777) of an object whose guest type is `guestFormat`. */
  chmod(target: ModelTarget, mode: number, guestFormat: number): Promise<void>;
  /** An id of -1 (0xFFFFFFFF) is left as it is; both -1 only updates ctime. */
  chown(target: ModelTarget, uid: number, gid: number): Promise<void>;
  xattrGet(fd: number, name: Buffer): Promise<Buffer>;
  /** Names each NUL-terminated, as listxattr(2) returns them, in the guest's namespace. */
  xattrList(fd: number): Promise<Buffer>;
  xattrSet(fd: number, name: Buffer, value: Buffer, flags: number): Promise<void>;
  xattrRemove(fd: number, name: Buffer): Promise<void>;
  /**
   * Write `data` at `offset` to the open `fd` of the target's object. A write by anyone but root
   * clears setuid (and setgid where the group may execute, or the writer is not in the group),
   * as Linux does; `writer` is null for root. `firstWrite` is true once per open file.
   */
  write(fd: number, target: ModelTarget, guestFormat: number, data: readonly Buffer[], offset: bigint, writer: Credentials | null, firstWrite: boolean): Promise<number>;
  /** The d_type a guest may be told for an entry whose host d_type is `hostType`. */
  direntType(hostType: number): number;
}

/** An id argument that means "leave unchanged". */
export function isUnchangedId(id: number): boolean {
  return id === -1 || id === 0xffffffff;
}
