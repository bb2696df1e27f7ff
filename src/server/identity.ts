import type { Credentials } from '../backend/backend.js';
import { NONUNAME } from '../protocol/constants.js';
import { Errno, P9Error } from '../protocol/errno.js';
import type { Message } from '../protocol/messages.js';
import type { Fid } from './fid.js';
import { mapIn, mapOut, type IdentityPolicy } from './identity-policy.js';
import type { ServerContext } from './server-context.js';

const UNCHANGED = 0xffffffff;

/**
 * Who an attach is, built once here and kept by every fid walked from it. The guest names its
 * user by number (n_uname; the Linux client attaches once per user) or by name, looked up on the
 * host. The allow list is checked against that guest uid; then a squashed or unmapped user acts
 * as the anonymous user and is confined (every host call made as that user, without
 * capabilities), while a mapped one acts as its host id.
 */
export function attachCredentials(server: ServerContext, m: Message<'Tattach'>): Credentials {
  const policy = server.identity;
  const guestUid = m.nUname !== NONUNAME ? m.nUname : server.uidOf(m.uname);
  if (policy.allowUsers && !policy.allowUsers.has(guestUid)) {
    throw new P9Error(Errno.EPERM, `uid ${guestUid} may not attach (--allow-users)`);
  }
  const squashed = policy.squash === 'all' || (policy.squash === 'root' && guestUid === 0);
  const uid = squashed ? null : mapIn(policy.uidMap, guestUid);
  if (uid === null) return { uid: policy.anonUid, gid: policy.anonGid, confined: true };
  // The client tells no group at attach; the user's own number is the best guess, and creates name theirs.
  return { uid, gid: mapIn(policy.gidMap, guestUid) ?? policy.anonGid, confined: false };
}

/** Who creates an object through `fid`: its attach's user, with the group the client chose, mapped. */
export function creator(fid: Fid, gid: number, policy: IdentityPolicy): Credentials {
  if (fid.cred.confined) return fid.cred;
  return { uid: fid.cred.uid, gid: gidIn(policy, gid), confined: false };
}

/** A uid a guest asks to chown to: its host id. An id the map lacks has none to give (EINVAL, as in a user namespace). */
export function uidIn(policy: IdentityPolicy, uid: number): number {
  if (uid === UNCHANGED) return uid;
  const h = mapIn(policy.uidMap, uid);
  if (h === null) throw new P9Error(Errno.EINVAL, `uid ${uid} has no host id (--uid-map)`);
  return h;
}

export function gidIn(policy: IdentityPolicy, gid: number): number {
  if (gid === UNCHANGED) return gid;
  const h = mapIn(policy.gidMap, gid);
  if (h === null) throw new P9Error(Errno.EINVAL, `gid ${gid} has no host id (--gid-map)`);
  return h;
}

/** How the guest sees a host owner: through the map, and as the anonymous ids where it has none. */
export function uidOut(policy: IdentityPolicy, uid: number): number {
  return mapOut(policy.uidMap, uid) ?? policy.anonUid;
}

export function gidOut(policy: IdentityPolicy, gid: number): number {
  return mapOut(policy.gidMap, gid) ?? policy.anonGid;
}

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

// A confined (squashed or unmapped) user is an ordinary user, whatever its guest kernel thinks:
// in passthrough the host refuses these already (no capabilities); the checks here make every
// model refuse them alike, mapped ones included, where nothing on the host would.

/** Only root gives files away: a confined user may set its own ids, nothing else. */
export function checkConfinedChown(cred: Credentials, uid: number | null, gid: number | null): void {
  if (!cred.confined) return;
  if ((uid !== null && uid !== cred.uid) || (gid !== null && gid !== cred.gid)) {
    throw new P9Error(Errno.EPERM, 'a squashed or unmapped user cannot give files away');
  }
}

/** Only the owner changes a mode. */
export function checkConfinedOwner(cred: Credentials, ownerUid: number): void {
  if (cred.confined && ownerUid !== cred.uid) throw new P9Error(Errno.EPERM, 'not the owner');
}

export function checkConfinedMknod(cred: Credentials, mode: number): void {
  const type = mode & S_IFMT;
  if (cred.confined && (type === S_IFCHR || type === S_IFBLK)) throw new P9Error(Errno.EPERM, 'a squashed or unmapped user cannot make devices');
}

/** security.* (file capabilities) and trusted.* need privilege. */
export function checkConfinedXattr(cred: Credentials, name: Buffer): void {
  if (!cred.confined) return;
  const n = name.toString('latin1');
  if (n.startsWith('security.') || n.startsWith('trusted.')) throw new P9Error(Errno.EPERM, `${n} needs privilege`);
}
