import { setTimeout as sleep } from 'node:timers/promises';
import { LockFlag, LockStatus, LockType } from '../../protocol/constants.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import type { Message } from '../../protocol/messages.js';
import { reply, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';

const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 200;

/**
 * A blocking request waits here, retrying, until the lock is free or the request is flushed:
 * answering BLOCKED would make the client sleep a whole `locktimeout` (30 s) before retrying.
 */
export async function lock(ctx: RequestContext, m: Message<'Tlock'>): Promise<Reply> {
  if (m.flags & ~(LockFlag.BLOCK | LockFlag.RECLAIM)) throw new P9Error(Errno.EINVAL, `lock flags 0x${m.flags.toString(16)}`);
  const fid = ctx.fid(m.fid);
  const open = ctx.open(fid);
  const backend = ctx.session.server.backend;
  const range = { lockType: m.lockType, start: m.start, length: m.length };
  let delay = RETRY_FIRST_MS;
  for (;;) {
    if (await backend.lock(open, range)) return reply('Rlock', { status: LockStatus.SUCCESS });
    if (!(m.flags & LockFlag.BLOCK) || m.lockType === LockType.UNLCK) return reply('Rlock', { status: LockStatus.BLOCKED });
    try {
      await sleep(delay, undefined, { signal: ctx.signal });
    } catch {
      throw new P9Error(Errno.EINTR, 'lock wait interrupted');
    }
    // Stop waiting for a fid that has been clunked or replaced meanwhile.
    if (!ctx.session.fids.holds(fid)) throw new P9Error(Errno.EBADF, `fid ${fid.id} went away while waiting for the lock`);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
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
