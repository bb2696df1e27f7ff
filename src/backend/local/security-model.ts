import type { Credentials } from '../backend.js';
import type { MetaSource, RawStat } from './sys.js';

/** What the guest sees of a host object: its type and permission bits, owner and device number. */
export interface GuestView {
  /** File type (S_IFMT bits) and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  rdev: bigint;
}

export const securityModelNames = ['passthrough', 'mapped-xattr', 'none'] as const;
export type SecurityModelName = (typeof securityModelNames)[number];

/**
 * The one road between the guest's view of the export and the host's: every create (mode, type,
 * owner, device number), readlink, getattr (type, mode, owner, rdev, and so the qid type),
 * chmod, chown, xattr (names and values) and readdir entry type goes through the model, so a
 * model decides all of them and nothing bypasses it. Objects are named by descriptors (O_PATH
 * or open) or by a directory descriptor and a checked name; the backend owns both.
 */
export interface SecurityModel {
  readonly name: SecurityModelName;
  /** Guest ids are host ids (passthrough, none): confining a user means acting as it on the host. */
  readonly hostIds: boolean;
  /** Metadata the addon reads along with every stat (mapped-xattr), so getattr and walk stay one hop. */
  readonly meta: MetaSource;
  /** The guest's view of a stat taken with {@link meta}. */
  view(st: RawStat): GuestView;
  /** Create and open a new regular file (O_EXCL); resolves its open descriptor. */
  createFile(dirFd: number, name: Buffer, hostFlags: number, mode: number, cred: Credentials): Promise<number>;
  mkdir(dirFd: number, name: Buffer, mode: number, cred: Credentials): Promise<void>;
  /** `mode` carries the type: S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO or S_IFSOCK. */
  mknod(dirFd: number, name: Buffer, mode: number, rdev: bigint, cred: Credentials): Promise<void>;
  symlink(dirFd: number, name: Buffer, target: Buffer, cred: Credentials): Promise<void>;
  /** The target of an object the guest sees as a symlink; `hostFormat` is its type on the host. */
  readlink(fd: number, hostFormat: number): Promise<Buffer>;
  /** Set the permission bits (07777) of an object whose guest type is `guestFormat`. */
  chmod(fd: number, mode: number, guestFormat: number): Promise<void>;
  /** An id of -1 (0xFFFFFFFF) is left as it is; both -1 only updates ctime. */
  chown(fd: number, uid: number, gid: number): Promise<void>;
  xattrGet(fd: number, name: Buffer): Promise<Buffer>;
  /** Names each NUL-terminated, as listxattr(2) returns them, in the guest's namespace. */
  xattrList(fd: number): Promise<Buffer>;
  xattrSet(fd: number, name: Buffer, value: Buffer, flags: number): Promise<void>;
  xattrRemove(fd: number, name: Buffer): Promise<void>;
  /**
   * Write `data` at `offset` to the open `fd` of `nodeFd`'s object. A write by anyone but root
   * clears setuid (and setgid where the group may execute, or the writer is not in the group),
   * as Linux does; `writer` is null for root. `firstWrite` is true once per open file.
   */
  write(fd: number, nodeFd: number, guestFormat: number, data: Buffer, offset: bigint, writer: Credentials | null, firstWrite: boolean): Promise<number>;
  /** The d_type a guest may be told for an entry whose host d_type is `hostType`. */
  direntType(hostType: number): number;
}

/** An id argument that means "leave unchanged". */
export function isUnchangedId(id: number): boolean {
  return id === -1 || id === 0xffffffff;
}
