import { RREAD_HEADER_SIZE } from '../../protocol/constants.js';
import { DirentPacker } from '../../protocol/dirent.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import { MessageType, type Message } from '../../protocol/messages.js';
import { checkHostMknod } from '../host-privilege.js';
import { checkConfinedMknod, creator } from '../identity.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

/**
 * Entries are packed straight into the reply frame, whole entries only; at once where the backend
 * can list without waiting.
 */
export function readdir(ctx: RequestContext, m: Message<'Treaddir'>): Reply | Promise<Reply> {
  const open = ctx.open(ctx.fid(m.fid));
  if (!open.node.isDirectory) throw new P9Error(Errno.ENOTDIR);
  const { backend, frames } = ctx.session.server;
  const count = Math.min(m.count, ctx.session.msize - RREAD_HEADER_SIZE);
  const frame = frames.take(RREAD_HEADER_SIZE + count);
  const packer = new DirentPacker(frame, RREAD_HEADER_SIZE, count);
  let now: boolean | undefined;
  try {
    now = backend.readdirNow?.(open, m.offset, packer);
  } catch (err) {
    frames.give(frame);
    throw err;
  }
  if (now) return direntReply(frame, packer);
  return backend.readdir(open, m.offset, packer).then(
    () => direntReply(frame, packer),
    (err: unknown) => {
      frames.give(frame);
      throw err;
    },
  );
}

function direntReply(frame: Buffer, packer: DirentPacker): Reply {
  const size = RREAD_HEADER_SIZE + packer.length;
  frame.writeUInt32LE(size, 0);
  frame[4] = MessageType.Rreaddir;
  frame.writeUInt32LE(packer.length, 7);
  return frame.subarray(0, size);
}

export async function mkdir(ctx: RequestContext, m: Message<'Tmkdir'>): Promise<Reply> {
  const qid = await ctx.session.server.backend.mkdir(ctx.dir(m.dfid), m.name, m.mode, creator(ctx.fid(m.dfid), m.gid, ctx.session.server.identity));
  return reply('Rmkdir', { qid });
}

export async function mknod(ctx: RequestContext, m: Message<'Tmknod'>): Promise<Reply> {
  const c = creator(ctx.fid(m.dfid), m.gid, ctx.session.server.identity);
  checkConfinedMknod(c, m.mode);
  checkHostMknod(ctx.session.server.hostPrivilege, m.mode);
  const qid = await ctx.session.server.backend.mknod(ctx.dir(m.dfid), m.name, m.mode, m.major, m.minor, c);
  return reply('Rmknod', { qid });
}

export async function symlink(ctx: RequestContext, m: Message<'Tsymlink'>): Promise<Reply> {
  const qid = await ctx.session.server.backend.symlink(ctx.dir(m.fid), m.name, m.target, creator(ctx.fid(m.fid), m.gid, ctx.session.server.identity));
  return reply('Rsymlink', { qid });
}

export async function link(ctx: RequestContext, m: Message<'Tlink'>): Promise<Reply> {
  const dir = ctx.dir(m.dfid);
  await ctx.session.server.backend.link(dir, ctx.node(ctx.fid(m.fid)), m.name);
  return reply('Rlink', {});
}

export async function readlink(ctx: RequestContext, m: Message<'Treadlink'>): Promise<Reply> {
  const target = await ctx.session.server.backend.readlink(ctx.node(ctx.fid(m.fid)));
  return reply('Rreadlink', { target });
}

export async function renameat(ctx: RequestContext, m: Message<'Trenameat'>): Promise<Reply> {
  const from = ctx.dir(m.oldDirFid);
  const to = ctx.dir(m.newDirFid);
  await ctx.session.server.backend.renameat(from, m.oldName, to, m.newName);
  return reply('Rrenameat', {});
}

/** Legacy rename of the object a fid names; the client sends it only if Trenameat fails with EOPNOTSUPP. */
export async function rename(ctx: RequestContext, m: Message<'Trename'>): Promise<Reply> {
  const node = ctx.node(ctx.fid(m.fid));
  await ctx.session.server.backend.rename(node, ctx.dir(m.dfid), m.name);
  return reply('Rrename', {});
}

export async function unlinkat(ctx: RequestContext, m: Message<'Tunlinkat'>): Promise<Reply> {
  await ctx.session.server.backend.unlinkat(ctx.dir(m.dfid), m.name, m.flags);
  return reply('Runlinkat', {});
}

/** Removes the object and clunks the fid, whether or not the removal succeeds. */
export async function remove(ctx: RequestContext, m: Message<'Tremove'>): Promise<Reply> {
  const fid = ctx.session.fids.take(m.fid);
  const node = ctx.pin(fid.node);
  fid.release();
  await ctx.session.server.backend.remove(node);
  return reply('Rremove', {});
}
