import { XATTR_SIZE_MAX } from '../../protocol/constants.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import type { Message } from '../../protocol/messages.js';
import { Fid } from '../fid.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

/** Reads the value (or, for an empty name, the list) now; the client fetches it with Tread on newfid. */
export async function xattrwalk(ctx: RequestContext, m: Message<'Txattrwalk'>): Promise<Reply> {
  const fid = ctx.fid(m.fid);
  ctx.session.fids.checkNew(m.newfid);
  const node = ctx.node(fid);
  const backend = ctx.session.server.backend;
  const value = m.name.length === 0 ? await backend.xattrList(node) : await backend.xattrGet(node, m.name);
  const x = new Fid(m.newfid, node.retain(), fid.cred);
  try {
    x.holdXattrBytes(ctx.session.xattrBudget, value.length);
  } catch (err) {
    x.release();
    throw err;
  }
  x.xattrValue = value;
  ctx.session.addFid(x);
  return reply('Rxattrwalk', { size: BigInt(value.length) });
}

/** Turns the fid into a buffer for the value; Twrite fills it and Tclunk sets it. */
export async function xattrcreate(ctx: RequestContext, m: Message<'Txattrcreate'>): Promise<Reply> {
  const fid = ctx.fid(m.fid);
  if (!fid.isPlain) throw new P9Error(Errno.EINVAL, `fid ${fid.id} is open`);
  if (m.attrSize > BigInt(XATTR_SIZE_MAX)) throw new P9Error(Errno.E2BIG, `xattr values are limited to ${XATTR_SIZE_MAX} bytes`);
  if (m.flags & ~3) throw new P9Error(Errno.EINVAL, 'xattr flags');
  if (m.name.length === 0) throw new P9Error(Errno.EINVAL, 'empty xattr name');
  const size = Number(m.attrSize);
  fid.holdXattrBytes(ctx.session.xattrBudget, size);
  fid.xattrPending = { name: Buffer.from(m.name), value: Buffer.alloc(size), flags: m.flags, written: 0 };
  return reply('Rxattrcreate', {});
}
