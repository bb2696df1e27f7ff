import { NOFID } from '../../protocol/constants.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import type { Message } from '../../protocol/messages.js';
import { Fid } from '../fid.js';
import { checkHostXattr } from '../host-privilege.js';
import { attachCredentials, checkConfinedXattr } from '../identity.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

export async function attach(ctx: RequestContext, m: Message<'Tattach'>): Promise<Reply> {
  if (m.afid !== NOFID) throw new P9Error(Errno.EINVAL, 'authentication is not supported: afid must be NOFID');
  ctx.session.fids.checkNew(m.fid);
  const cred = attachCredentials(ctx.session.server, m);
  const root = await ctx.session.server.backend.attach(cred, m.aname);
  ctx.session.addFid(new Fid(m.fid, root, cred));
  return reply('Rattach', { qid: root.qid });
}

/** No authentication scheme exists yet; the client then attaches with afid = NOFID. */
export async function auth(): Promise<Reply> {
  throw new P9Error(Errno.EOPNOTSUPP, 'authentication is not required');
}

/**
 * Releases the fid whatever happens; for a fid prepared by Txattrcreate this is when the
 * attribute is really set, and Rclunk reports how that went.
 */
export function clunk(ctx: RequestContext, m: Message<'Tclunk'>): Reply | Promise<Reply> {
  const fid = ctx.session.fids.take(m.fid);
  if (!fid.xattrPending) {
    fid.release();
    return reply('Rclunk', {});
  }
  return setPendingXattr(ctx, fid);
}

/** Txattrcreate's value, complete now that its fid is clunked, is set (or an empty one removed). */
async function setPendingXattr(ctx: RequestContext, fid: Fid): Promise<Reply> {
  try {
    const x = fid.xattrPending!;
    checkConfinedXattr(fid.cred, x.name);
    checkHostXattr(ctx.session.server.hostPrivilege, x.name);
    if (x.written !== x.value.length) throw new P9Error(Errno.EINVAL, `xattr value incomplete: ${x.written} of ${x.value.length} bytes written`);
    const backend = ctx.session.server.backend;
    if (x.value.length === 0 && x.flags & 2) await backend.xattrRemove(fid.node, x.name);
    else await backend.xattrSet(fid.node, x.name, x.value, x.flags);
  } finally {
    fid.release();
  }
  return reply('Rclunk', {});
}
