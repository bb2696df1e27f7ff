import { RREAD_HEADER_SIZE } from '../../protocol/constants.js';
import { Errno, P9Error } from '../../protocol/errno.js';
import { MessageType, type Message } from '../../protocol/messages.js';
import { reply, type Reply } from '../reply.js';
import { twritePayload, type ScatteredTwrite } from '../scattered-twrite.js';
import type { RequestContext } from '../request-context.js';

/**
 * An Rread frame of `count` data bytes whose header is written once the count is known (large
 * ones are reused). Given the file offset, its data is placed at that offset's place in a page.
 */
function rreadFrame(ctx: RequestContext, capacity: number, offset?: bigint): Buffer {
  const frames = ctx.session.server.frames;
  if (offset === undefined) return frames.take(RREAD_HEADER_SIZE + capacity);
  return frames.take(RREAD_HEADER_SIZE + capacity, RREAD_HEADER_SIZE, Number(offset & 4095n));
}

function finishRread(frame: Buffer, count: number): Buffer {
  const size = RREAD_HEADER_SIZE + count;
  frame.writeUInt32LE(size, 0);
  frame[4] = MessageType.Rread;
  frame.writeUInt32LE(count, 7);
  return frame.subarray(0, size);
}

/** Data is read straight into the reply frame: no copy between disk and socket. */
export function read(ctx: RequestContext, m: Message<'Tread'>): Reply | Promise<Reply> {
  const fid = ctx.fid(m.fid);
  const count = Math.min(m.count, ctx.session.msize - RREAD_HEADER_SIZE);
  if (fid.xattrValue) {
    const v = fid.xattrValue;
    const start = m.offset >= BigInt(v.length) ? v.length : Number(m.offset);
    const n = Math.min(count, v.length - start);
    const frame = rreadFrame(ctx, n);
    v.copy(frame, RREAD_HEADER_SIZE, start, start + n);
    return finishRread(frame, n);
  }
  const open = ctx.open(fid);
  if (open.node.isDirectory) throw new P9Error(Errno.EISDIR);
  const frame = rreadFrame(ctx, count, m.offset);
  const frames = ctx.session.server.frames;
  const backend = ctx.session.server.backend;
  let now: number | undefined;
  try {
    now = count === 0 ? 0 : backend.readNow?.(open, m.offset, frame, RREAD_HEADER_SIZE, count);
  } catch (err) {
    frames.give(frame);
    throw err;
  }
  if (now !== undefined) return finishRread(frame, now);
  return backend.read(open, m.offset, frame, RREAD_HEADER_SIZE, count).then(
    (n) => finishRread(frame, n),
    (err: unknown) => {
      frames.give(frame);
      throw err;
    },
  );
}

/** The payload is written from the request frame itself (a view, never copied). */
export async function write(ctx: RequestContext, m: ScatteredTwrite): Promise<Reply> {
  const fid = ctx.fid(m.fid);
  const payload = twritePayload(m);
  const x = fid.xattrPending;
  if (x) {
    const data = payload.length === 1 ? payload[0]! : Buffer.concat(payload);
    const end = m.offset + BigInt(data.length);
    if (end > BigInt(x.value.length)) throw new P9Error(Errno.EINVAL, 'write beyond the size given to Txattrcreate');
    data.copy(x.value, Number(m.offset));
    x.written += data.length;
    return reply('Rwrite', { count: data.length });
  }
  const open = ctx.open(fid);
  if (!open.writable) throw new P9Error(Errno.EBADF, 'file is not open for writing');
  const count = await ctx.session.server.backend.write(open, m.offset, payload);
  return reply('Rwrite', { count });
}

export async function fsync(ctx: RequestContext, m: Message<'Tfsync'>): Promise<Reply> {
  const open = ctx.open(ctx.fid(m.fid));
  await ctx.session.server.backend.fsync(open, m.datasync !== 0);
  return reply('Rfsync', {});
}
