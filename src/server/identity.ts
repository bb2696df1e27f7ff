import type { Credentials } from '../backend/backend.js';
import { NONUNAME } from '../protocol/constants.js';
import type { Message } from '../protocol/messages.js';
import type { Fid } from './fid.js';
import type { ServerContext } from './server-context.js';

/**
 * Who an attach is, built once here and kept by every fid walked from it: the numeric uid the
 * client sends (n_uname; the Linux client attaches once per user), else the uname looked up on
 * the host. Identity policy (squash, id maps, allow lists) belongs here and nowhere else.
 */
export function attachCredentials(server: ServerContext, m: Message<'Tattach'>): Credentials {
  const uid = m.nUname !== NONUNAME ? m.nUname : server.uidOf(m.uname);
  return { uid, gid: uid };
}

/** Who creates an object through `fid`: its attach's user, with the group the client chose (setgid directories, newgrp). */
export function creator(fid: Fid, gid: number): Credentials {
  return { uid: fid.cred.uid, gid };
}
