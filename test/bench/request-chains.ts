import { Errno, P9Error } from '../../src/protocol/errno.js';
import type { PipelinedConnection } from './pipelined-connection.js';

// The request chains the rows are made of, sent as the Linux 9p client sends them.

const names = (path: readonly string[]) => path.map((s) => Buffer.from(s));

export async function walkTo(c: PipelinedConnection, path: readonly string[]): Promise<number> {
  const fid = c.newFid();
  await c.rpc('Twalk', { fid: c.root, newfid: fid, wnames: names(path) });
  return fid;
}

export async function openAt(c: PipelinedConnection, path: readonly string[], flags: number): Promise<number> {
  const fid = await walkTo(c, path);
  await c.rpc('Tlopen', { fid, flags });
  return fid;
}

/**
 * Tunlinkat as the Linux client sends it, and what it falls back to on a server that answers
 * EOPNOTSUPP (diod 1.0.24): Tremove on a fid of the entry, cloned for the purpose.
 */
export async function unlinkAt(c: PipelinedConnection, dfid: number, name: Buffer, flags: number): Promise<void> {
  if (!c.unsupported.has('Tunlinkat')) {
    try {
      await c.rpc('Tunlinkat', { dfid, name, flags });
      return;
    } catch (err) {
      if (!(err instanceof P9Error && err.errno === Errno.EOPNOTSUPP)) throw err;
      c.unsupported.add('Tunlinkat');
    }
  }
  const fid = c.newFid();
  await c.rpc('Twalk', { fid: dfid, newfid: fid, wnames: [name] });
  await c.rpc('Tremove', { fid });
}

/**
 * Trenameat, or on EOPNOTSUPP the Linux client's fallback: Trename of the fid it holds for the
 * entry (`fid`, which the worker keeps for the purpose, as the client's dentry does).
 */
export async function renameAt(c: PipelinedConnection, dfid: number, oldName: Buffer, newName: Buffer, fid: number): Promise<void> {
  if (!c.unsupported.has('Trenameat')) {
    try {
      await c.rpc('Trenameat', { oldDirFid: dfid, oldName, newDirFid: dfid, newName });
      return;
    } catch (err) {
      if (!(err instanceof P9Error && err.errno === Errno.EOPNOTSUPP)) throw err;
      c.unsupported.add('Trenameat');
    }
  }
  await c.rpc('Trename', { fid, dfid, name: newName });
}

export const clunk = async (c: PipelinedConnection, fid: number) => void (await c.rpc('Tclunk', { fid }));
