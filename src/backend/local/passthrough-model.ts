import type { Credentials } from '../backend.js';
import { Errno, toErrno } from '../../protocol/errno.js';
import type { GuestView, ModelTarget, SecurityModel, SecurityModelName } from './security-model.js';
import * as sys from './sys.js';
import { StatIndex as S, type RawStat } from './sys.js';

/**
 * Host metadata is the guest's metadata. Objects are born owned by the guest's user: the
 * creating system call runs with that user's fsuid and fsgid, so the host's own permission
 * checks apply to the guest's user as well, and no later chown can land on another object.
 * A server that may not switch users (not root) creates everything as itself.
 */
export class PassthroughModel implements SecurityModel {
  readonly name: SecurityModelName = 'passthrough';
  readonly hostIds = true;
  readonly meta = undefined;
  readonly byName = false;

  stat(target: ModelTarget, fd = target.fd): Promise<RawStat> {
    return sys.fstat(fd);
  }

  statNow(fd: number): RawStat | undefined {
    return sys.fstatNow(fd);
  }

  view(st: RawStat): GuestView {
    return { mode: Number(st[S.mode]), uid: Number(st[S.uid]), gid: Number(st[S.gid]), rdev: st[S.rdev]!, nlink: st[S.nlink]! };
  }

  createFile(dirFd: number, name: Buffer, hostFlags: number, mode: number, cred: Credentials): Promise<number> {
    return sys.openat(dirFd, name, hostFlags | sys.O.O_CREAT | sys.O.O_EXCL, mode & 0o7777, cred.uid, cred.gid);
  }

  mkdir(dirFd: number, name: Buffer, mode: number, cred: Credentials): Promise<void> {
    return sys.mkdirat(dirFd, name, mode & 0o7777, cred.uid, cred.gid);
  }

  mknod(dirFd: number, name: Buffer, mode: number, rdev: bigint, cred: Credentials): Promise<void> {
    return sys.mknodat(dirFd, name, mode, rdev, cred.uid, cred.gid);
  }

  symlink(dirFd: number, name: Buffer, target: Buffer, cred: Credentials): Promise<void> {
    return sys.symlinkat(target, dirFd, name, cred.uid, cred.gid);
  }

  readonly reservedNames: readonly Buffer[] = [];

  isReserved(): boolean {
    return false;
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

  readlink(fd: number): Promise<Buffer> {
    return sys.readlink(fd);
  }

  chmod(target: ModelTarget, mode: number): Promise<void> {
    return sys.fchmod(target.fd, mode & 0o7777);
  }

  chown(target: ModelTarget, uid: number, gid: number): Promise<void> {
    return sys.fchown(target.fd, uid, gid);
  }

  xattrGet(fd: number, name: Buffer): Promise<Buffer> {
    return sys.getxattr(fd, name);
  }

  xattrList(fd: number): Promise<Buffer> {
    return sys.listxattr(fd);
  }

  xattrSet(fd: number, name: Buffer, value: Buffer, flags: number): Promise<void> {
    return sys.setxattr(fd, name, value, flags);
  }

  xattrRemove(fd: number, name: Buffer): Promise<void> {
    return sys.removexattr(fd, name);
  }

  /** As the writer (without CAP_FSETID), so the host kernel clears the bits itself. */
  write(fd: number, _target: ModelTarget, _guestFormat: number, data: readonly Buffer[], offset: bigint, writer: Credentials | null): Promise<number> {
    return writer ? sys.pwritev(fd, data, offset, writer.uid, writer.gid) : sys.pwritev(fd, data, offset);
  }

  direntType(hostType: number): number {
    return hostType;
  }
}

/**
 * QEMU's "none": passthrough for a server that may not be able to give objects away. A chown
 * the host refuses (EPERM) is ignored rather than failed, so guests whose tools chown (tar,
 * package managers) run against an unprivileged server.
 */
export class NoneModel extends PassthroughModel {
  override readonly name: SecurityModelName = 'none';

  override async chown(target: ModelTarget, uid: number, gid: number): Promise<void> {
    try {
      await super.chown(target, uid, gid);
    } catch (err) {
      if (toErrno(err) !== Errno.EPERM) throw err;
    }
  }
}
