import type { Attr } from '../../backend/backend.js';
import { GetattrMask, IOHDRSZ, SetattrValid as V } from '../../protocol/constants.js';
import type { Message } from '../../protocol/messages.js';
import { checkHostMode } from '../host-privilege.js';
import { checkConfinedChown, checkConfinedOwner, gidIn, gidOut, uidIn, uidOut } from '../identity.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

/**
 * Every field is always filled. st_blksize is raised to the largest block multiple that fits a
 * message, as QEMU does since 6.2: programs size their reads by it, and 4 KiB reads over 9P
 * cost one round trip each.
 */
export function getattr(ctx: RequestContext, m: Message<'Tgetattr'>): Reply | Promise<Reply> {
  const fid = ctx.fid(m.fid);
  const node = ctx.node(fid);
  const open = fid.open ? ctx.pin(fid.open) : null;
  const backend = ctx.session.server.backend;
  const now = backend.getattrNow?.(node, open);
  return now ? attrReply(ctx, now) : backend.getattr(node, open).then((a) => attrReply(ctx, a));
}

function attrReply(ctx: RequestContext, a: Attr): Reply {
  const identity = ctx.session.server.identity;
  const io = BigInt(ctx.session.msize - IOHDRSZ);
  const blksize = a.blksize > 0n && io >= a.blksize ? io - (io % a.blksize) : a.blksize;
  return reply('Rgetattr', {
    valid: GetattrMask.BASIC | (a.hasBtime ? GetattrMask.BTIME : 0n),
    qid: a.qid,
    mode: a.mode,
    uid: uidOut(identity, a.uid),
    gid: gidOut(identity, a.gid),
    nlink: a.nlink,
    rdev: a.rdev,
    size: a.size,
    blksize,
    blocks: a.blocks,
    atimeSec: a.atimeSec,
    atimeNsec: a.atimeNsec,
    mtimeSec: a.mtimeSec,
    mtimeNsec: a.mtimeNsec,
    ctimeSec: a.ctimeSec,
    ctimeNsec: a.ctimeNsec,
    btimeSec: a.btimeSec,
    btimeNsec: a.btimeNsec,
    gen: 0n,
    dataVersion: 0n,
  });
}

/** Works on open fids of unlinked files too: O_TRUNC arrives as a size change on the open fid. */
export async function setattr(ctx: RequestContext, m: Message<'Tsetattr'>): Promise<Reply> {
  const fid = ctx.fid(m.fid);
  const node = ctx.node(fid);
  const open = fid.open ? ctx.pin(fid.open) : null;
  const { backend, identity } = ctx.session.server;
  const uid = m.valid & V.UID ? uidIn(identity, m.uid) : null;
  const gid = m.valid & V.GID ? gidIn(identity, m.gid) : null;
  checkConfinedChown(fid.cred, uid, gid);
  if (fid.cred.confined && m.valid & V.MODE) checkConfinedOwner(fid.cred, (await backend.getattr(node, open)).uid);
  if (m.valid & V.MODE) checkHostMode(ctx.session.server.hostPrivilege, m.mode, node.isDirectory);
  await backend.setattr(node, open, { ...m, uid: uid ?? m.uid, gid: gid ?? m.gid });
  return reply('Rsetattr', {});
}

export async function statfs(ctx: RequestContext, m: Message<'Tstatfs'>): Promise<Reply> {
  const s = await ctx.session.server.backend.statfs(ctx.node(ctx.fid(m.fid)));
  return reply('Rstatfs', s);
}
