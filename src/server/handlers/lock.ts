import { LockFlag, LockStatus, LockType } from '../../protocol/constants.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import type { Message } from '../../protocol/messages.js';
import type { OpenFile, LockRange } from '../../backend/backend.js';
import type { Fid } from '../fid.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

/**
 * A blocking request that finds the lock taken waits here until it is granted, flushed or its
 * fid clunked: answering BLOCKED would make the client sleep a whole `locktimeout` (30 s) before
 * retrying. The backend wakes it when the lock is released; it never polls.
 */
export async function lock(ctx: RequestContext, m: Message<'Tlock'>): Promise<Reply> {
  if (m.flags & ~(LockFlag.BLOCK | LockFlag.RECLAIM)) throw new P9Error(Errno.EINVAL, `lock flags 0x${m.flags.toString(16)}`);
  const fid = ctx.fid(m.fid);
  const open = ctx.open(fid);
  const range = { lockType: m.lockType, start: m.start, length: m.length };
  if (await ctx.session.server.backend.lock(open, range)) return reply('Rlock', { status: LockStatus.SUCCESS });
  if (!(m.flags & LockFlag.BLOCK) || m.lockType === LockType.UNLCK) return reply('Rlock', { status: LockStatus.BLOCKED });
  await waitForLock(ctx, fid, open, range);
  return reply('Rlock', { status: LockStatus.SUCCESS });
}

/** Wait, counted against the connection's and the server's caps on waiters (ENOLCK beyond). */
async function waitForLock(ctx: RequestContext, fid: Fid, open: OpenFile, range: LockRange): Promise<void> {
  const mine = ctx.session.lockWaiters;
  const all = ctx.session.server.lockWaiters;
  mine.enter();
  try {
    all.enter();
  } catch (err) {
    mine.leave();
    throw err;
  }
  // Ended by a flush (or disconnect) of the request, or by a clunk of its fid.
  const end = new AbortController();
  const stop = () => end.abort();
  const released = fid.released;
  ctx.signal.addEventListener('abort', stop);
  released.addEventListener('abort', stop);
  if (ctx.signal.aborted || released.aborted) stop();
  const unpark = ctx.session.park();
  try {
    await ctx.session.server.backend.waitLock(open, range, end.signal);
  } catch (err) {
    if (released.aborted && !ctx.signal.aborted) throw new P9Error(Errno.EBADF, `fid ${fid.id} went away while waiting for the lock`);
    throw err;
  } finally {
    unpark();
    ctx.signal.removeEventListener('abort', stop);
    released.removeEventListener('abort', stop);
    all.leave();
    mine.leave();
  }
}

export async function getlock(ctx: RequestContext, m: Message<'Tgetlock'>): Promise<Reply> {
  const open = ctx.open(ctx.fid(m.fid));
  const l = await ctx.session.server.backend.getlock(open, { lockType: m.lockType, start: m.start, length: m.length });
  return reply('Rgetlock', {
    lockType: l.lockType,
    start: l.start,
    length: l.length,
    procId: l.lockType === LockType.UNLCK ? m.procId : 0,
    clientId: m.clientId,
  });
}
