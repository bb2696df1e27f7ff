import { Errno, P9Error } from '../../protocol/errno.js';

/** Where the mapped-xattr model keeps everything that is the guest's but not an ordinary user.* attribute. */
export const MAPPED_PREFIX = Buffer.from('user.virtfs.');

const USER = Buffer.from('user.');
/** Namespaces the host kernel would act on (capabilities, SELinux labels, overlayfs, ACLs): stored inert under the prefix. */
const KEPT_UNDER_PREFIX = [Buffer.from('security.'), Buffer.from('trusted.')];
const ACLS = [Buffer.from('system.posix_acl_access'), Buffer.from('system.posix_acl_default')];

export type XattrAccess = 'get' | 'set';

/**
 * Where POSIX ACLs live: under the prefix (QEMU's mapped-xattr), or on the host file itself as
 * real ACLs (QEMU's mapped-file, which passes them through).
 */
export type AclPlace = 'mapped' | 'host';

/**
 * The host name of a guest's extended attribute in the mapped-xattr model, in QEMU's format:
 * ACLs live at `user.virtfs.system.posix_acl_*`, user.* attributes stay as they are, and the
 * model's own `user.virtfs.*` cannot be reached (get: ENODATA, set or remove: EACCES, as QEMU
 * answers). security.* and trusted.* (file capabilities, overlayfs) are kept under the same
 * prefix, as virtiofsd's xattrmap does, so an unprivileged server can hold them and the host
 * kernel never acts on them. Any other namespace is EOPNOTSUPP. With acls 'host' (mapped-file)
 * ACLs keep their own names, as QEMU's mapped-file keeps them.
 */
export function hostXattrName(guest: Buffer, access: XattrAccess, acls: AclPlace = 'mapped'): Buffer {
  if (startsWith(guest, MAPPED_PREFIX)) {
    throw new P9Error(access === 'get' ? Errno.ENODATA : Errno.EACCES, 'user.virtfs.* belongs to the server');
  }
  if (startsWith(guest, USER)) return guest;
  const acl = ACLS.some((a) => a.equals(guest));
  if (acl && acls === 'host') return guest;
  if (acl || KEPT_UNDER_PREFIX.some((p) => startsWith(guest, p))) {
    return Buffer.concat([MAPPED_PREFIX, guest]);
  }
  throw new P9Error(Errno.EOPNOTSUPP, 'only user.*, security.*, trusted.* and POSIX ACL attributes are kept');
}

/** The guest's name for a host attribute, or null if the guest must not see it. */
export function guestXattrName(host: Buffer, acls: AclPlace = 'mapped'): Buffer | null {
  if (startsWith(host, MAPPED_PREFIX)) {
    const inner = host.subarray(MAPPED_PREFIX.length);
    if ((acls === 'mapped' && ACLS.some((a) => a.equals(inner))) || KEPT_UNDER_PREFIX.some((p) => startsWith(inner, p))) return inner;
    return null;
  }
  if (acls === 'host' && ACLS.some((a) => a.equals(host))) return host;
  return startsWith(host, USER) ? host : null;
}

/** A listxattr(2) result (NUL-terminated names) translated to the guest's names. */
export function guestXattrList(hostList: Buffer, acls: AclPlace = 'mapped'): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < hostList.length; i++) {
    if (hostList[i] !== 0) continue;
    const name = guestXattrName(hostList.subarray(start, i), acls);
    if (name) out.push(name, NUL);
    start = i + 1;
  }
  return Buffer.concat(out);
}

const NUL = Buffer.from([0]);

function startsWith(b: Buffer, prefix: Buffer): boolean {
  return b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);
}
