/**
 * Filesystems whose metadata calls are cheap enough to make on the event loop: disk and memory
 * filesystems of this kernel, by fstatfs f_type (linux/magic.h). Anything else — NFS, CIFS, FUSE,
 * 9p, Ceph, or a type not listed — keeps every call on the thread pool, so a slow server or
 * daemon behind it never stalls other clients.
 */
const LOCAL_TYPES = new Map<number, string>([
  [0xef53, 'ext2/3/4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0xf2f52010, 'f2fs'],
  [0xca451a4e, 'bcachefs'],
  [0x2fc12fc1, 'zfs'],
  [0x01021994, 'tmpfs'],
  [0x858458f6, 'ramfs'],
  [0x794c7630, 'overlay'],
]);

/** The local filesystem's name for an fstatfs f_type, or null if its calls may wait on something remote. */
export function localFilesystem(fsType: number): string | null {
  return LOCAL_TYPES.get(fsType >>> 0) ?? null;
}
