import type { OpenFile } from '../../backend/backend.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import type { Message } from '../../protocol/messages.js';
import type { Fid } from '../fid.js';
import { checkHostMode } from '../host-privilege.js';
import { creator } from '../identity.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

// iounit 0 lets the client use msize - 24 for every read and write, the largest it can.
const IOUNIT = 0;

export function lopen(ctx: RequestContext, m: Message<'Tlopen'>): Reply | Promise<Reply> {
  const fid = ctx.fid(m.fid);
  if (!fid.isPlain) throw new P9Error(Errno.EINVAL, `fid ${fid.id} is already open`);
  const node = ctx.node(fid);
  const backend = ctx.session.server.backend;
  const now = backend.openNow?.(node, m.flags, fid.cred);
  return now ? opened(ctx, fid, now) : backend.open(node, m.flags, fid.cred).then((open) => opened(ctx, fid, open));
}

function opened(ctx: RequestContext, fid: Fid, open: OpenFile): Reply {
  if (!fid.isPlain || !ctx.session.fids.holds(fid)) {
    open.release();
    throw new P9Error(Errno.EBADF, 'fid changed while opening');
  }
  fid.open = open;
  return reply('Rlopen', { qid: open.node.qid, iounit: IOUNIT });
}

/** The directory fid becomes the newly created, opened file. */
export async function lcreate(ctx: RequestContext, m: Message<'Tlcreate'>): Promise<Reply> {
  const fid = ctx.fid(m.fid);
  if (!fid.isPlain) throw new P9Error(Errno.EINVAL, `fid ${fid.id} is already open`);
  const dir = ctx.dir(m.fid);
  checkHostMode(ctx.session.server.hostPrivilege, m.mode, false);
  const open = await ctx.session.server.backend.create(dir, m.name, m.flags, m.mode, creator(fid, m.gid, ctx.session.server.identity));
  if (!fid.isPlain || !ctx.session.fids.holds(fid)) {
    open.release();
    throw new P9Error(Errno.EBADF, 'fid changed while creating');
  }
  const old = fid.node;
  fid.node = open.node.retain();
  fid.open = open;
  old.release();
  return reply('Rlcreate', { qid: open.node.qid, iounit: IOUNIT });
}
