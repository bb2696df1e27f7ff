import { randomBytes } from 'node:crypto';
import type { Credentials } from '../backend.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import { guestXattrList, hostXattrName, MAPPED_PREFIX, type AclPlace } from './mapped-xattr-names.js';
import { isUnchangedId, type GuestView, type ModelTarget, type SecurityModel, type SecurityModelName } from './security-model.js';
import * as sys from './sys.js';
import { MetaFound, StatIndex as S, type MetaSource, type RawStat } from './sys.js';

const S_IFMT = 0o170000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o0010;
const PATH_MAX = 4096;
/** Where mkdir makes a directory before it has its metadata. */
const NEW_DIR_PREFIX = '.virtfs-new-';

/** Guest types a host regular file may stand for: the mapped models make every non-directory a regular file. */
const TYPES_ON_REGULAR = new Set([sys.O.S_IFREG, sys.O.S_IFLNK, sys.O.S_IFCHR, sys.O.S_IFBLK, sys.O.S_IFIFO, sys.O.S_IFSOCK]);

const DT_REG = 8;
const DT_UNKNOWN = 0;

const name = (field: string) => Buffer.concat([MAPPED_PREFIX, Buffer.from(field)]);
const UID = name('uid');
const GID = name('gid');
const MODE = name('mode');
const RDEV = name('rdev');

/** The guest's view of a new object, as the mapped models record it. */
export interface NewMeta {
  uid: number;
  gid: number;
  /** Type and permission bits. */
  mode: number;
  /** Recorded only when not null. */
  rdev: bigint | null;
}

export interface MappedOptions {
  /** Host permission bits of every file the model creates (QEMU's fmode, default 0600). */
  fmode: number;
  /** Host permission bits of every directory it creates (QEMU's dmode, default 0700). */
  dmode: number;
}

/**
 * QEMU's mapped-xattr model, on QEMU's on-disk format, for a server running as an ordinary user.
 * Host objects belong to the server with fmode/dmode; the guest's uid, gid, mode (with type) and
 * rdev live in user.virtfs.{uid,gid,mode,rdev} (u32 LE, rdev u64 LE). Devices, fifos, sockets and
 * symlinks are regular host files (a symlink holds its target), so nothing the guest makes is
 * privileged or special on the host. Where metadata is missing the host's stat shows through.
 */
export class MappedXattrModel implements SecurityModel {
  readonly name: SecurityModelName = 'mapped-xattr';
  readonly hostIds = false;
  readonly meta: MetaSource = MAPPED_PREFIX;
  readonly byName: boolean = false;
  /** QEMU's mapped-xattr records rdev for devices only. */
  protected readonly rdevOfEveryMknod: boolean = false;
  /** QEMU's mapped-xattr keeps ACLs under user.virtfs. */
  protected readonly acls: AclPlace = 'mapped';

  constructor(protected readonly options: MappedOptions) {}

  stat(target: ModelTarget, fd = target.fd): Promise<RawStat> {
    return sys.fstat(fd, this.meta);
  }

  statNow(fd: number): RawStat | undefined {
    return sys.fstatNow(fd, this.meta);
  }

  view(st: RawStat): GuestView {
    const found = st[S.metaFound]!;
    const hostMode = Number(st[S.mode]);
    let mode = hostMode;
    if (found & MetaFound.mode) {
      const meta = Number(st[S.metaMode]);
      // The type comes from the metadata only where the host object can stand for it: a host
      // directory is a directory whatever its metadata says.
      const hostType = hostMode & S_IFMT;
      const type = hostType === sys.O.S_IFREG && TYPES_ON_REGULAR.has(meta & S_IFMT) ? meta & S_IFMT : hostType;
      mode = type | (meta & 0o7777);
    }
    return {
      mode,
      uid: Number(found & MetaFound.uid ? st[S.metaUid] : st[S.uid]),
      gid: Number(found & MetaFound.gid ? st[S.metaGid] : st[S.gid]),
      rdev: found & MetaFound.rdev ? st[S.metaRdev]! : st[S.rdev]!,
      // A hidden metadata directory (mapped-file) is no subdirectory of the guest's.
      nlink: found & MetaFound.dir && st[S.nlink]! > 2n ? st[S.nlink]! - 1n : st[S.nlink]!,
    };
  }

  readonly reservedNames: readonly Buffer[] = [];

  isReserved(name: Uint8Array): boolean {
    return this.reservedNames.some((r) => r.equals(name));
  }

  /**
   * Record the guest's view of an object just made as dirFd/name; `fd` is its descriptor, or -1
   * for a directory (no mkdir returns one).
   */
  protected async recordNew(dirFd: number, name: Buffer, fd: number, meta: NewMeta): Promise<void> {
    if (fd >= 0) return setMeta(fd, meta);
    // Open what was just made and check it is still a directory, so the xattrs land on it.
    const [pfd, st] = await sys.openPath(dirFd, name);
    try {
      if ((Number(st[S.mode]) & S_IFMT) !== sys.O.S_IFDIR) throw new P9Error(Errno.EAGAIN, 'directory replaced while being made');
      await setMeta(pfd, meta);
    } finally {
      await sys.close(pfd);
    }
  }

  async createFile(dirFd: number, name: Buffer, hostFlags: number, mode: number, cred: Credentials): Promise<number> {
    const fd = await sys.openat(dirFd, name, hostFlags | sys.O.O_CREAT | sys.O.O_EXCL, this.options.fmode);
    try {
      await this.recordNew(dirFd, name, fd, { uid: cred.uid, gid: cred.gid, mode: sys.O.S_IFREG | (mode & 0o7777), rdev: null });
      return fd;
    } catch (err) {
      await discard(dirFd, name, fd, 0);
      throw err;
    }
  }

  /**
   * No call makes a directory and opens it at once, so it is made under a fresh random name, its
   * metadata written through it there, and only then renamed into place (RENAME_NOREPLACE): a
   * host process swapping its own directory in under the guest's name never gets the guest's
   * metadata, and the guest never sees the directory without it.
   */
  async mkdir(dirFd: number, name: Buffer, mode: number, cred: Credentials): Promise<void> {
    const temp = Buffer.from(`${NEW_DIR_PREFIX}${randomBytes(8).toString('hex')}`);
    await sys.mkdirat(dirFd, temp, this.options.dmode);
    try {
      await this.recordNew(dirFd, temp, -1, { uid: cred.uid, gid: cred.gid, mode: sys.O.S_IFDIR | (mode & 0o7777), rdev: null });
      await sys.renameat(dirFd, temp, dirFd, name, sys.O.RENAME_NOREPLACE);
    } catch (err) {
      await discard(dirFd, temp, -1, sys.O.AT_REMOVEDIR);
      throw err;
    }
  }

  /** Every special file is a regular host file, made with O_EXCL so its metadata lands on it and nothing else. */
  async mknod(dirFd: number, name: Buffer, mode: number, rdev: bigint, cred: Credentials): Promise<void> {
    const fd = await sys.openat(dirFd, name, sys.O.O_RDONLY | sys.O.O_CREAT | sys.O.O_EXCL, this.options.fmode);
    try {
      const type = mode & S_IFMT;
      const device = type === sys.O.S_IFCHR || type === sys.O.S_IFBLK;
      await this.recordNew(dirFd, name, fd, { uid: cred.uid, gid: cred.gid, mode: type | (mode & 0o7777), rdev: device || this.rdevOfEveryMknod ? rdev : null });
    } catch (err) {
      await discard(dirFd, name, -1, 0);
      throw err;
    } finally {
      await sys.close(fd);
    }
  }

  /** A regular host file holding the target, as QEMU makes it; mode 0777 like every Linux symlink. */
  async symlink(dirFd: number, name: Buffer, target: Buffer, cred: Credentials): Promise<void> {
    if (target.length >= PATH_MAX) throw new P9Error(Errno.ENAMETOOLONG);
    const fd = await sys.openat(dirFd, name, sys.O.O_WRONLY | sys.O.O_CREAT | sys.O.O_EXCL, this.options.fmode);
    try {
      if ((await sys.pwrite(fd, target, 0, target.length, 0n)) !== target.length) throw new P9Error(Errno.EIO, 'short write of a symlink target');
      await this.recordNew(dirFd, name, fd, { uid: cred.uid, gid: cred.gid, mode: sys.O.S_IFLNK | 0o777, rdev: null });
    } catch (err) {
      await discard(dirFd, name, -1, 0);
      throw err;
    } finally {
      await sys.close(fd);
    }
  }

  link(target: ModelTarget, dirFd: number, name: Buffer): Promise<void> {
    return sys.linkat(target.fd, dirFd, name);
  }

  rename(oldDirFd: number, oldName: Buffer, newDirFd: number, newName: Buffer, flags = 0): Promise<void> {
    return sys.renameat(oldDirFd, oldName, newDirFd, newName, flags);
  }

  unlink(dirFd: number, name: Buffer, flags: number): Promise<void> {
    return sys.unlinkat(dirFd, name, flags);
  }

  /** A mapped symlink's target is its content; a host symlink (made outside the model) reads as one. */
  async readlink(fd: number, hostFormat: number): Promise<Buffer> {
    if (hostFormat === sys.O.S_IFLNK) return sys.readlink(fd);
    const rfd = await sys.reopen(fd, sys.O.O_RDONLY);
    try {
      const buf = Buffer.allocUnsafe(PATH_MAX);
      const n = await sys.pread(rfd, buf, 0, PATH_MAX, 0n);
      return buf.subarray(0, n);
    } finally {
      await sys.close(rfd);
    }
  }

  chmod(target: ModelTarget, mode: number, guestFormat: number): Promise<void> {
    return sys.setxattr(target.fd, MODE, u32((guestFormat & S_IFMT) | (mode & 0o7777)), 0);
  }

  async chown(target: ModelTarget, uid: number, gid: number): Promise<void> {
    if (isUnchangedId(uid) && isUnchangedId(gid)) return sys.fchown(target.fd, -1, -1);
    if (!isUnchangedId(uid)) await sys.setxattr(target.fd, UID, u32(uid), 0);
    if (!isUnchangedId(gid)) await sys.setxattr(target.fd, GID, u32(gid), 0);
  }

  xattrGet(fd: number, name: Buffer): Promise<Buffer> {
    return sys.getxattr(fd, hostXattrName(name, 'get', this.acls));
  }

  async xattrList(fd: number): Promise<Buffer> {
    return guestXattrList(await sys.listxattr(fd), this.acls);
  }

  xattrSet(fd: number, name: Buffer, value: Buffer, flags: number): Promise<void> {
    return sys.setxattr(fd, hostXattrName(name, 'set', this.acls), value, flags);
  }

  xattrRemove(fd: number, name: Buffer): Promise<void> {
    return sys.removexattr(fd, hostXattrName(name, 'set', this.acls));
  }

  /**
   * The host file is the server's, so the bits live only in the metadata: cleared there after the
   * first write through an open file (a later chmod +s while it stays open is not undone).
   */
  async write(fd: number, target: ModelTarget, guestFormat: number, data: readonly Buffer[], offset: bigint, writer: Credentials | null, firstWrite: boolean): Promise<number> {
    const n = await sys.pwritev(fd, data, offset);
    if (writer && firstWrite && n > 0) {
      const view = this.view(await this.stat(target));
      let mode = view.mode & 0o7777;
      if (mode & S_ISUID) mode &= ~S_ISUID;
      if (mode & S_ISGID && (mode & S_IXGRP || view.gid !== writer.gid)) mode &= ~S_ISGID;
      if (mode !== (view.mode & 0o7777)) await this.chmod(target, mode, guestFormat);
    }
    return n;
  }

  /** A host regular file may be any guest type but a directory; the guest's stat tells which. */
  direntType(hostType: number): number {
    return hostType === DT_REG ? DT_UNKNOWN : hostType;
  }
}

function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function u64(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b;
}

/** The guest's view of a new object, written as QEMU writes it. */
async function setMeta(fd: number, m: NewMeta): Promise<void> {
  const sets = [sys.setxattr(fd, UID, u32(m.uid), 0), sys.setxattr(fd, GID, u32(m.gid), 0), sys.setxattr(fd, MODE, u32(m.mode), 0)];
  if (m.rdev !== null) sets.push(sys.setxattr(fd, RDEV, u64(m.rdev), 0));
  const results = await Promise.allSettled(sets);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** Undo a create whose metadata could not be written (e.g. a host filesystem without user xattrs). */
export async function discard(dirFd: number, name: Buffer, fd: number, flags: number): Promise<void> {
  if (fd >= 0 && flags === 0) await sys.close(fd).catch(() => {});
  await sys.unlinkat(dirFd, name, flags).catch(() => {});
}
