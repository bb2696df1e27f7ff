import { message } from '../protocol/codec.js';
import { parseDirents, type Dirent } from '../protocol/dirent.js';
import { GetattrMask, IOHDRSZ, LinuxOpenFlag, MAX_WALK_ELEMENTS, NOFID, VERSION_9P2000L, XattrFlag } from '../protocol/constants.js';
import { Errno, P9Error } from '../protocol/errno.js';
import type { Message } from '../protocol/messages.js';
import type { Qid } from '../protocol/qid.js';
import { Connection, IdPool } from './connection.js';

export type Name = string | Buffer;
export type Attr = Omit<Message<'Rgetattr'>, 'type' | 'tag'>;
export type SetattrFields = Partial<Omit<Message<'Tsetattr'>, 'type' | 'tag' | 'fid' | 'valid'>> & { valid: number };

const bytes = (n: Name): Buffer => (typeof n === 'string' ? Buffer.from(n) : n);
/** How many reads or writes a transfer keeps in flight. */
const PIPELINE = 8;

/** A 9P2000.L client: fids are numbers handed out lowest-free, every 64-bit value is a bigint. */
export class Client {
  private readonly fids = new IdPool(NOFID);

  private constructor(readonly conn: Connection) {}

  static async connect(address: string | Connection, opts: { msize?: number; version?: string } = {}): Promise<Client> {
    const conn = typeof address === 'string' ? await Connection.open(address) : address;
    const r = await conn.rpc<'Tversion'>(message('Tversion', { tag: 0, msize: opts.msize ?? 1 << 20, version: opts.version ?? VERSION_9P2000L }));
    if (r.version !== VERSION_9P2000L) {
      conn.close();
      throw new Error(`server does not speak ${VERSION_9P2000L} (answered "${r.version}")`);
    }
    conn.msize = r.msize;
    return new Client(conn);
  }

  get msize(): number {
    return this.conn.msize;
  }

  /** Largest payload of one Tread/Twrite/Treaddir. */
  get iounit(): number {
    return this.msize - IOHDRSZ;
  }

  newFid(): number {
    return this.fids.take();
  }

  async attach(o: { uname?: string; nUname?: number; aname?: string } = {}): Promise<number> {
    const fid = this.newFid();
    try {
      await this.conn.rpc<'Tattach'>(message('Tattach', { tag: 0, fid, afid: NOFID, uname: o.uname ?? '', aname: o.aname ?? '', nUname: o.nUname ?? process.getuid?.() ?? 0 }));
      return fid;
    } catch (err) {
      this.fids.give(fid);
      throw err;
    }
  }

  /** Walk any number of names from `fid` (16 per message) onto a new fid; ENOENT if any is missing. */
  async walk(fid: number, names: readonly Name[]): Promise<{ fid: number; qids: Qid[] }> {
    const newfid = this.newFid();
    const qids: Qid[] = [];
    let from = fid;
    try {
      let i = 0;
      do {
        const chunk = names.slice(i, i + MAX_WALK_ELEMENTS).map(bytes);
        const r = await this.conn.rpc<'Twalk'>(message('Twalk', { tag: 0, fid: from, newfid, wnames: chunk }));
        if (r.qids.length < chunk.length) throw new P9Error(Errno.ENOENT);
        qids.push(...r.qids);
        from = newfid;
        i += chunk.length;
      } while (i < names.length);
      return { fid: newfid, qids };
    } catch (err) {
      if (from === newfid) await this.clunk(newfid).catch(() => {});
      else this.fids.give(newfid);
      throw err;
    }
  }

  /** Walk a slash-separated path from `root`. */
  walkPath(root: number, path: string): Promise<{ fid: number; qids: Qid[] }> {
    return this.walk(root, path.split('/').filter((s) => s !== ''));
  }

  async open(fid: number, flags: number = LinuxOpenFlag.RDONLY): Promise<Qid> {
    return (await this.conn.rpc<'Tlopen'>(message('Tlopen', { tag: 0, fid, flags }))).qid;
  }

  /** Create `name` in directory `dirFid`; dirFid becomes the open new file. */
  async create(dirFid: number, name: Name, flags: number, mode: number, gid = process.getgid?.() ?? 0): Promise<Qid> {
    return (await this.conn.rpc<'Tlcreate'>(message('Tlcreate', { tag: 0, fid: dirFid, name: bytes(name), flags, mode, gid }))).qid;
  }

  async read(fid: number, offset: bigint, count: number): Promise<Buffer> {
    return (await this.conn.rpc<'Tread'>(message('Tread', { tag: 0, fid, offset, count: Math.min(count, this.iounit) }))).data;
  }

  /** Read a whole file, several reads in flight, in order; `onChunk` gets each piece as it completes. */
  async readAll(fid: number, onChunk?: (b: Buffer) => void | Promise<void>): Promise<Buffer> {
    const parts: Buffer[] = [];
    const size = this.iounit;
    let next = 0n;
    let done = false;
    const inflight: Promise<Buffer>[] = [];
    const issue = () => {
      inflight.push(this.read(fid, next, size));
      next += BigInt(size);
    };
    for (let i = 0; i < PIPELINE; i++) issue();
    while (inflight.length > 0) {
      const b = await inflight.shift()!;
      if (b.length === 0) done = true;
      if (!done) {
        parts.push(b);
        await onChunk?.(b);
        // A short read is not the end (the file may be growing or the server may cut reads);
        // only an empty one is. Offsets stay exact because each read has its own.
        if (b.length < size) done = true;
        else issue();
      }
    }
    return Buffer.concat(parts);
  }

  async write(fid: number, offset: bigint, data: Buffer): Promise<number> {
    return (await this.conn.rpc<'Twrite'>(message('Twrite', { tag: 0, fid, offset, data }))).count;
  }

  /** Write all of `data` from `offset`, several writes in flight; a short write is finished off. */
  async writeAll(fid: number, data: Buffer, offset = 0n): Promise<void> {
    const size = this.iounit;
    const writeChunk = async (at: number, end: number): Promise<void> => {
      while (at < end) {
        const n = await this.write(fid, offset + BigInt(at), data.subarray(at, end));
        if (n <= 0) throw new P9Error(Errno.EIO, 'server wrote nothing');
        at += n;
      }
    };
    const chunks: [number, number][] = [];
    for (let at = 0; at < data.length; at += size) chunks.push([at, Math.min(at + size, data.length)]);
    for (let i = 0; i < chunks.length; i += PIPELINE) {
      await Promise.all(chunks.slice(i, i + PIPELINE).map(([a, e]) => writeChunk(a, e)));
    }
  }

  /** Every entry of an open directory, following offsets until an empty reply. */
  async readdir(fid: number): Promise<Dirent[]> {
    const out: Dirent[] = [];
    let offset = 0n;
    for (;;) {
      const r = await this.conn.rpc<'Treaddir'>(message('Treaddir', { tag: 0, fid, offset, count: this.iounit }));
      if (r.data.length === 0) return out;
      const entries = parseDirents(r.data);
      out.push(...entries);
      offset = entries[entries.length - 1]!.offset;
    }
  }

  async mkdir(dirFid: number, name: Name, mode: number, gid = process.getgid?.() ?? 0): Promise<Qid> {
    return (await this.conn.rpc<'Tmkdir'>(message('Tmkdir', { tag: 0, dfid: dirFid, name: bytes(name), mode, gid }))).qid;
  }

  async symlink(dirFid: number, name: Name, target: Name, gid = process.getgid?.() ?? 0): Promise<Qid> {
    return (await this.conn.rpc<'Tsymlink'>(message('Tsymlink', { tag: 0, fid: dirFid, name: bytes(name), target: bytes(target), gid }))).qid;
  }

  async mknod(dirFid: number, name: Name, mode: number, major = 0, minor = 0, gid = process.getgid?.() ?? 0): Promise<Qid> {
    return (await this.conn.rpc<'Tmknod'>(message('Tmknod', { tag: 0, dfid: dirFid, name: bytes(name), mode, major, minor, gid }))).qid;
  }

  async link(dirFid: number, fid: number, name: Name): Promise<void> {
    await this.conn.rpc<'Tlink'>(message('Tlink', { tag: 0, dfid: dirFid, fid, name: bytes(name) }));
  }

  async readlink(fid: number): Promise<Buffer> {
    return (await this.conn.rpc<'Treadlink'>(message('Treadlink', { tag: 0, fid }))).target;
  }

  async renameat(oldDir: number, oldName: Name, newDir: number, newName: Name): Promise<void> {
    await this.conn.rpc<'Trenameat'>(message('Trenameat', { tag: 0, oldDirFid: oldDir, oldName: bytes(oldName), newDirFid: newDir, newName: bytes(newName) }));
  }

  async unlinkat(dirFid: number, name: Name, flags = 0): Promise<void> {
    await this.conn.rpc<'Tunlinkat'>(message('Tunlinkat', { tag: 0, dfid: dirFid, name: bytes(name), flags }));
  }

  /** Remove the object; the fid is gone afterwards whatever the outcome. */
  async remove(fid: number): Promise<void> {
    try {
      await this.conn.rpc<'Tremove'>(message('Tremove', { tag: 0, fid }));
    } finally {
      this.fids.give(fid);
    }
  }

  async getattr(fid: number, mask: bigint = GetattrMask.ALL): Promise<Attr> {
    const { type: _t, tag: _g, ...attr } = await this.conn.rpc<'Tgetattr'>(message('Tgetattr', { tag: 0, fid, requestMask: mask }));
    return attr;
  }

  async setattr(fid: number, f: SetattrFields): Promise<void> {
    await this.conn.rpc<'Tsetattr'>(
      message('Tsetattr', { tag: 0, fid, valid: f.valid, mode: f.mode ?? 0, uid: f.uid ?? 0, gid: f.gid ?? 0, size: f.size ?? 0n, atimeSec: f.atimeSec ?? 0n, atimeNsec: f.atimeNsec ?? 0n, mtimeSec: f.mtimeSec ?? 0n, mtimeNsec: f.mtimeNsec ?? 0n }),
    );
  }

  async statfs(fid: number): Promise<Omit<Message<'Rstatfs'>, 'type' | 'tag'>> {
    const { type: _t, tag: _g, ...s } = await this.conn.rpc<'Tstatfs'>(message('Tstatfs', { tag: 0, fid }));
    return s;
  }

  async fsync(fid: number, datasync = false): Promise<void> {
    await this.conn.rpc<'Tfsync'>(message('Tfsync', { tag: 0, fid, datasync: datasync ? 1 : 0 }));
  }

  async lock(fid: number, lockType: number, o: { flags?: number; start?: bigint; length?: bigint; procId?: number; clientId?: string } = {}): Promise<number> {
    const r = await this.conn.rpc<'Tlock'>(message('Tlock', { tag: 0, fid, lockType, flags: o.flags ?? 0, start: o.start ?? 0n, length: o.length ?? 0n, procId: o.procId ?? process.pid, clientId: o.clientId ?? 'virtfs' }));
    return r.status;
  }

  async getlock(fid: number, lockType: number, o: { start?: bigint; length?: bigint; procId?: number; clientId?: string } = {}): Promise<Omit<Message<'Rgetlock'>, 'type' | 'tag'>> {
    const { type: _t, tag: _g, ...l } = await this.conn.rpc<'Tgetlock'>(message('Tgetlock', { tag: 0, fid, lockType, start: o.start ?? 0n, length: o.length ?? 0n, procId: o.procId ?? process.pid, clientId: o.clientId ?? 'virtfs' }));
    return l;
  }

  /** An attribute's value (Txattrwalk on a fresh fid, read, clunk). */
  async xattrGet(fid: number, name: Name): Promise<Buffer> {
    return this.xattrRead(fid, bytes(name));
  }

  async xattrList(fid: number): Promise<string[]> {
    const raw = await this.xattrRead(fid, Buffer.alloc(0));
    return raw.toString('latin1').split('\0').filter((s) => s !== '');
  }

  private async xattrRead(fid: number, name: Buffer): Promise<Buffer> {
    const x = this.newFid();
    let size: bigint;
    try {
      size = (await this.conn.rpc<'Txattrwalk'>(message('Txattrwalk', { tag: 0, fid, newfid: x, name }))).size;
    } catch (err) {
      this.fids.give(x);
      throw err;
    }
    try {
      const parts: Buffer[] = [];
      let got = 0n;
      while (got < size) {
        const b = await this.read(x, got, Number(size - got));
        if (b.length === 0) break;
        parts.push(b);
        got += BigInt(b.length);
      }
      return Buffer.concat(parts);
    } finally {
      await this.clunk(x).catch(() => {});
    }
  }

  /** Set an attribute: the value is written to a cloned fid and takes effect at its clunk. */
  async xattrSet(fid: number, name: Name, value: Buffer, flags = 0): Promise<void> {
    const { fid: x } = await this.walk(fid, []);
    try {
      await this.conn.rpc<'Txattrcreate'>(message('Txattrcreate', { tag: 0, fid: x, name: bytes(name), attrSize: BigInt(value.length), flags }));
      if (value.length > 0) await this.writeAll(x, value);
    } catch (err) {
      await this.clunk(x).catch(() => {});
      throw err;
    }
    await this.clunk(x);
  }

  xattrRemove(fid: number, name: Name): Promise<void> {
    return this.xattrSet(fid, name, Buffer.alloc(0), XattrFlag.REPLACE);
  }

  /** Release a fid; its number is free again whatever the server answers. */
  async clunk(fid: number): Promise<void> {
    try {
      await this.conn.rpc<'Tclunk'>(message('Tclunk', { tag: 0, fid }));
    } finally {
      this.fids.give(fid);
    }
  }

  close(): void {
    this.conn.close();
  }
}
