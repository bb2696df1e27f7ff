import type { Credentials } from '../backend.js';
import type { RawStat } from './sys.js';

/** What the guest sees of a host object's ownership and type. */
export interface Ownership {
  mode: number;
  uid: number;
  gid: number;
  rdev: bigint;
}

/**
 * The one place where a request's credentials and a file's metadata are translated between the
 * guest's view and the host's. The local backend calls it for every create, chmod, chown,
 * getattr and xattr; QEMU's mapped-xattr, mapped-file and none models plug in here.
 */
export interface SecurityModel {
  readonly name: string;
  /** Give a just-created object (fd: O_PATH or open) the owner the guest asked for. */
  ownNewObject(fd: number, cred: Credentials): Promise<void>;
  chmod(fd: number, mode: number): Promise<void>;
  /** uid/gid of 0xFFFFFFFF leave that id unchanged. */
  chown(fd: number, uid: number, gid: number): Promise<void>;
  ownership(stat: RawStat): Ownership;
  /** Throws if the guest may not touch this attribute name (e.g. a model's own metadata). */
  checkXattrName(name: Buffer): void;
  /** Drop names the guest must not see from a listxattr result. */
  filterXattrList(list: Buffer): Buffer;
}
