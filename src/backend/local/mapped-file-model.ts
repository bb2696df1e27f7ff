import { Errno, P9Error } from '../../protocol/errno.js';
import { linkMeta, META_DIR, META_FILES, META_ROOT, moveMeta, removeMeta, removeMetaDirOf, writeMeta, type MetaFields } from './mapped-file-store.js';
import type { Credentials } from '../backend.js';
import { discard, MappedXattrModel, type NewMeta } from './mapped-xattr-model.js';
import { isUnchangedId, type ModelTarget, type SecurityModelName } from './security-model.js';
import * as sys from './sys.js';
import { MetaFound, StatIndex as S, type MetaSource, type RawStat } from './sys.js';

const S_IFMT = 0o170000;

/**
 * QEMU's mapped-file model, on QEMU's on-disk format: host objects are made as in mapped-xattr
 * (the server's, fmode/dmode, special files as regular files), and the guest's uid, gid, mode and
 * rdev of D/NAME live in the text file D/.virtfs_metadata/NAME (the root's in
 * .virtfs_metadata_root); see mapped-file-store.ts. Both names are hidden and refused
 * (CVE-2017-7493 was a guest rewriting them). Metadata is found by name, so the backend tells
 * every operation where its object's entry is (ModelTarget.at), and link, rename and unlink carry
 * the metadata along. Where there is none the host's stat shows through.
 *
 * As in QEMU's mapped-file, POSIX ACLs are real ACLs on the host file (the host kernel applies
 * them to the server's own access too, and a named entry means that host id) and user.*
 * attributes are the host file's: a tree shows the same through either server. Beyond QEMU,
 * security.* and trusted.* are kept under user.virtfs. as in mapped-xattr (QEMU hands them to the
 * host kernel, which refuses or acts on them), so user.virtfs.* stays the server's. And a
 * directory's link count leaves out its hidden .virtfs_metadata, as POSIX counts subdirectories
 * (QEMU's counts it, and fails pjdfstest's rename/24.t for it).
 */
export class MappedFileModel extends MappedXattrModel {
  override readonly name: SecurityModelName = 'mapped-file';
  override readonly meta: MetaSource = META_FILES;
  override readonly byName = true;
  /** QEMU's mapped-file records rdev for every mknod (0 for fifos, sockets and regular files). */
  protected override readonly rdevOfEveryMknod = true;
  protected override readonly acls = 'host';

  /** Its metadata is found by the object's name (or kept in memory), which a descriptor does not give. */
  override statNow(): undefined {
    return undefined;
  }

  /** An object unlinked while held has no file any more: its metadata was kept in memory. */
  override async stat(target: ModelTarget, fd = target.fd): Promise<RawStat> {
    const st = await sys.fstat(fd, this.meta, target.kept ? null : target.at);
    if (target.kept) {
      const dir = st[S.metaFound]! & MetaFound.dir;
      st.set(target.kept, S.metaFound);
      st[S.metaFound] = (st[S.metaFound]! & ~MetaFound.dir) | dir;
    }
    return st;
  }

  /** The metadata is a file found by name anyway: the directory is made under its own. */
  override async mkdir(dirFd: number, name: Buffer, mode: number, cred: Credentials): Promise<void> {
    await sys.mkdirat(dirFd, name, this.options.dmode);
    try {
      await this.recordNew(dirFd, name, -1, { uid: cred.uid, gid: cred.gid, mode: sys.O.S_IFDIR | (mode & 0o7777), rdev: null });
    } catch (err) {
      await discard(dirFd, name, -1, sys.O.AT_REMOVEDIR);
      throw err;
    }
  }

  override readonly reservedNames: readonly Buffer[] = [META_DIR, META_ROOT];

  protected override recordNew(dirFd: number, name: Buffer, _fd: number, m: NewMeta): Promise<void> {
    return writeMeta({ dir: dirFd, name }, { uid: BigInt(m.uid >>> 0), gid: BigInt(m.gid >>> 0), mode: BigInt(m.mode), rdev: m.rdev }, true);
  }

  override async link(target: ModelTarget, dirFd: number, name: Buffer): Promise<void> {
    await sys.linkat(target.fd, dirFd, name);
    if (!target.at) return;
    try {
      await linkMeta(target.at, dirFd, name);
    } catch (err) {
      await sys.unlinkat(dirFd, name, 0).catch(() => {});
      throw err;
    }
  }

  override async rename(oldDirFd: number, oldName: Buffer, newDirFd: number, newName: Buffer, flags = 0): Promise<void> {
    await sys.renameat(oldDirFd, oldName, newDirFd, newName, flags);
    try {
      await moveMeta(oldDirFd, oldName, newDirFd, newName);
    } catch (err) {
      await sys.renameat(newDirFd, newName, oldDirFd, oldName, 0).catch(() => {});
      throw err;
    }
  }

  /**
   * The object goes first, then its metadata (QEMU does the reverse, and a failed unlink then
   * leaves an object without it). A directory's own metadata directory must go before it can.
   */
  override async unlink(dirFd: number, name: Buffer, flags: number): Promise<void> {
    if (flags & sys.O.AT_REMOVEDIR) await removeMetaDirOf(dirFd, name);
    await sys.unlinkat(dirFd, name, flags);
    await removeMeta(dirFd, name);
  }

  override chmod(target: ModelTarget, mode: number, guestFormat: number): Promise<void> {
    return this.update(target, { mode: BigInt((guestFormat & S_IFMT) | (mode & 0o7777)) });
  }

  override chown(target: ModelTarget, uid: number, gid: number): Promise<void> {
    if (isUnchangedId(uid) && isUnchangedId(gid)) return sys.fchown(target.fd, -1, -1);
    const change: Partial<MetaFields> = {};
    if (!isUnchangedId(uid)) change.uid = BigInt(uid >>> 0);
    if (!isUnchangedId(gid)) change.gid = BigInt(gid >>> 0);
    return this.update(target, change);
  }

  /**
   * Read, change and rewrite the fields, keeping those not changed (QEMU's
   * local_set_mapped_file_attrat). The object's own ctime changes too, as a chmod or chown's does
   * (writing its metadata file alone does not touch it; QEMU's leaves it as it was).
   */
  private async update(target: ModelTarget, change: Partial<MetaFields>): Promise<void> {
    await this.rewrite(target, change);
    await sys.fchown(target.fd, -1, -1);
  }

  private async rewrite(target: ModelTarget, change: Partial<MetaFields>): Promise<void> {
    if (target.kept) return keep(target.kept, change);
    if (!target.at) throw new P9Error(Errno.EOPNOTSUPP, 'the directory entry holding this object\'s metadata is not known');
    const st = await sys.fstat(target.fd, this.meta, target.at);
    const found = st[S.metaFound]!;
    const current: MetaFields = {
      uid: found & MetaFound.uid ? st[S.metaUid]! : null,
      gid: found & MetaFound.gid ? st[S.metaGid]! : null,
      mode: found & MetaFound.mode ? st[S.metaMode]! : null,
      rdev: found & MetaFound.rdev ? st[S.metaRdev]! : null,
    };
    await writeMeta(target.at, { ...current, ...change }, false);
  }
}

/** Apply a change to metadata kept in memory (slots metaFound..metaRdev). */
function keep(kept: BigUint64Array, change: Partial<MetaFields>): void {
  const slots = [
    [change.uid, MetaFound.uid],
    [change.gid, MetaFound.gid],
    [change.mode, MetaFound.mode],
    [change.rdev, MetaFound.rdev],
  ] as const;
  slots.forEach(([v, bit], i) => {
    if (v === undefined || v === null) return;
    kept[0] = kept[0]! | bit;
    kept[1 + i] = v;
  });
}
