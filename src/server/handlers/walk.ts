import type { WalkResult } from '../../backend/backend.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import type { Message } from '../../protocol/messages.js';
import { Fid } from '../fid.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

/**
 * nwname 0 clones; a walk that fails on its first name is an error; one that fails later answers
 * with the qids it got and creates no newfid. newfid may equal fid (the walk moves the fid).
 */
export function walk(ctx: RequestContext, m: Message<'Twalk'>): Reply | Promise<Reply> {
  const fid = ctx.fid(m.fid);
  const inPlace = m.newfid === m.fid;
  if (inPlace && !fid.isPlain) throw new P9Error(Errno.EINVAL, 'an open fid cannot be walked onto itself');
  if (!inPlace) ctx.session.fids.checkNew(m.newfid);
  const from = ctx.node(fid);
  if (m.wnames.length === 0) {
    if (!inPlace) ctx.session.addFid(new Fid(m.newfid, from.retain(), fid.cred));
    return reply('Rwalk', { qids: [] });
  }
  const backend = ctx.session.server.backend;
  const now = backend.walkNow?.(from, m.wnames);
  return now ? walked(ctx, m, fid, now) : backend.walk(from, m.wnames).then((r) => walked(ctx, m, fid, r));
}

function walked(ctx: RequestContext, m: Message<'Twalk'>, fid: Fid, r: WalkResult): Reply {
  if (!r.node) {
    if (r.qids.length === 0) throw r.error ?? new P9Error(Errno.ENOENT);
    return reply('Rwalk', { qids: r.qids });
  }
  if (m.newfid === m.fid) {
    // The fid may have been clunked or changed while we walked; only move it if it is still ours.
    if (ctx.session.fids.holds(fid) && fid.isPlain) {
      const old = fid.node;
      fid.node = r.node;
      old.release();
    } else {
      r.node.release();
      throw new P9Error(Errno.EBADF, 'fid changed during walk');
    }
  } else {
    ctx.session.addFid(new Fid(m.newfid, r.node, fid.cred));
  }
  return reply('Rwalk', { qids: r.qids });
}
