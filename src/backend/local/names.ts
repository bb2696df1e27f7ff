import { Errno, P9Error } from '../../protocol/errno.js';

const SLASH = 0x2f;
const DOT = 0x2e;

export function isDot(name: Uint8Array): boolean {
  return name.length === 1 && name[0] === DOT;
}

export function isDotDot(name: Uint8Array): boolean {
  return name.length === 2 && name[0] === DOT && name[1] === DOT;
}

/**
 * Every name from the wire passes here before it reaches a system call: one path component,
 * never empty, never containing '/' or NUL (CVE-2016-7116 was a '/' let through).
 */
export function checkComponent(name: Uint8Array): void {
  if (name.length === 0) throw new P9Error(Errno.ENOENT, 'empty name');
  if (name.includes(SLASH)) throw new P9Error(Errno.ENOENT, 'name contains "/"');
  if (name.includes(0)) throw new P9Error(Errno.EINVAL, 'name contains NUL');
  if (name.length > 255) throw new P9Error(Errno.ENAMETOOLONG);
}

/** A name a new object will get (create, mkdir, mknod, symlink, link, rename target). */
export function checkNewName(name: Uint8Array): void {
  checkComponent(name);
  if (isDot(name) || isDotDot(name)) throw new P9Error(Errno.EEXIST, '"." and ".." cannot be created');
}

/** A name an existing object is removed or renamed by. */
export function checkExistingName(name: Uint8Array): void {
  checkComponent(name);
  if (isDot(name)) throw new P9Error(Errno.EINVAL, '"." cannot be removed or renamed');
  if (isDotDot(name)) throw new P9Error(Errno.ENOTEMPTY, '".." cannot be removed or renamed');
}
