import { Errno, P9Error, toErrno } from '../../protocol/errno.js';
import * as sys from './sys.js';
import type { MetaAt, MetaFiles } from './sys.js';

/**
 * QEMU's mapped-file metadata on disk: the guest's view of entry NAME of directory D is the text
 * file D/.virtfs_metadata/NAME, of the export root the file .virtfs_metadata_root in the root.
 * Every component is opened relative to a directory descriptor without following symlinks.
 */
export const META_DIR = Buffer.from('.virtfs_metadata');
export const META_ROOT = Buffer.from('.virtfs_metadata_root');
export const META_FILES: MetaFiles = { dir: META_DIR, root: META_ROOT };

/** The fields as QEMU writes them; null leaves a field out. */
export interface MetaFields {
  uid: bigint | null;
  gid: bigint | null;
  mode: bigint | null;
  rdev: bigint | null;
}

/** QEMU prints each field with %d of an int: ids and modes past 2^31 come out negative. */
export function formatMeta(m: MetaFields): Buffer {
  const line = (field: string, v: bigint | null) => (v === null ? '' : `virtfs.${field}=${asQemuInt(v)}\n`);
  return Buffer.from(line('uid', m.uid) + line('gid', m.gid) + line('mode', m.mode) + line('rdev', m.rdev));
}

/** A 32-bit value as QEMU's int; a wider rdev (which QEMU cannot hold) is written whole. */
function asQemuInt(v: bigint): string {
  return (v >> 32n === 0n ? BigInt.asIntN(32, v) : v).toString();
}

/**
 * Write the metadata of the object at `at`. An existing file is rewritten in place (as QEMU does)
 * so that the hard links among metadata files of hard-linked objects stay shared; a `fresh` one
 * (a new object) first drops any stale file left at its name, which may be another's link.
 */
export async function writeMeta(at: MetaAt, m: MetaFields, fresh: boolean): Promise<void> {
  const flags = sys.O.O_WRONLY | sys.O.O_CREAT | sys.O.O_TRUNC | sys.O.O_NONBLOCK;
  let fd: number;
  if (at.name === null) {
    fd = await sys.openat(at.dir, META_ROOT, flags, 0o600);
  } else {
    const name = at.name;
    fd = await inMetaDir(at.dir, true, async (mdir) => {
      if (fresh) await ignoreEnoent(sys.unlinkat(mdir, name, 0));
      return sys.openat(mdir, name, flags, 0o600);
    });
  }
  try {
    const text = formatMeta(m);
    if ((await sys.pwrite(fd, text, 0, text.length, 0n)) !== text.length) throw new P9Error(Errno.EIO, 'short write of metadata');
  } finally {
    await sys.close(fd);
  }
}

/** Hard-link the metadata of `from` as that of newDir/newName (QEMU's local_link); none to link is fine. */
export async function linkMeta(from: MetaAt, newDirFd: number, newName: Buffer): Promise<void> {
  if (from.name === null) return;
  const name = from.name;
  const src = await inMetaDir(from.dir, false, (mdir) => ignoreEnoent(sys.openat(mdir, name, sys.O.O_PATH, 0)));
  if (src === undefined) return;
  try {
    await inMetaDir(newDirFd, true, async (mdir) => {
      await ignoreEnoent(sys.unlinkat(mdir, newName, 0));
      await sys.linkat(src, mdir, newName);
    });
  } finally {
    await sys.close(src);
  }
}

/**
 * Move the metadata of oldDir/oldName to newDir/newName (QEMU's local_renameat). Where the old
 * entry had none, whatever the new name had is dropped: it described the object just replaced
 * (QEMU leaves it, and the renamed object then wears it).
 */
export async function moveMeta(oldDirFd: number, oldName: Buffer, newDirFd: number, newName: Buffer): Promise<void> {
  const moved = await inMetaDir(oldDirFd, false, async (omap) => {
    const src = await ignoreEnoent(sys.openat(omap, oldName, sys.O.O_PATH, 0));
    if (src === undefined) return false;
    await sys.close(src);
    await inMetaDir(newDirFd, true, (nmap) => sys.renameat(omap, oldName, nmap, newName, 0));
    return true;
  });
  if (!moved) await removeMeta(newDirFd, newName);
}

/** Drop the metadata of dir/name, if any. */
export async function removeMeta(dirFd: number, name: Buffer): Promise<void> {
  await inMetaDir(dirFd, false, (mdir) => ignoreEnoent(sys.unlinkat(mdir, name, 0)));
}

/** Remove directory dir/name's own (empty) metadata directory, so the directory can be removed. */
export async function removeMetaDirOf(dirFd: number, name: Buffer): Promise<void> {
  const fd = await sys.openat(dirFd, name, sys.O.O_PATH | sys.O.O_DIRECTORY, 0);
  try {
    await ignoreEnoent(sys.unlinkat(fd, META_DIR, sys.O.AT_REMOVEDIR));
  } finally {
    await sys.close(fd);
  }
}

/**
 * Run fn on dir's metadata directory (made 0700 if `create`, as QEMU makes it). Without
 * `create`, a missing one resolves undefined.
 */
async function inMetaDir<T>(dirFd: number, create: true, fn: (mdir: number) => Promise<T>): Promise<T>;
async function inMetaDir<T>(dirFd: number, create: false, fn: (mdir: number) => Promise<T>): Promise<T | undefined>;
async function inMetaDir<T>(dirFd: number, create: boolean, fn: (mdir: number) => Promise<T>): Promise<T | undefined> {
  if (create) {
    try {
      await sys.mkdirat(dirFd, META_DIR, 0o700);
    } catch (err) {
      if (toErrno(err) !== Errno.EEXIST) throw err;
    }
  }
  const mdir = await (create ? sys.openat(dirFd, META_DIR, sys.O.O_PATH | sys.O.O_DIRECTORY, 0) : ignoreEnoent(sys.openat(dirFd, META_DIR, sys.O.O_PATH | sys.O.O_DIRECTORY, 0)));
  if (mdir === undefined) return undefined;
  try {
    return await fn(mdir);
  } finally {
    await sys.close(mdir);
  }
}

async function ignoreEnoent<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (toErrno(err) === Errno.ENOENT) return undefined;
    throw err;
  }
}
