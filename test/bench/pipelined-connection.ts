import net from 'node:net';
import { encode, message } from '../../src/protocol/codec.js';
import { NOFID, NOTAG, VERSION_9P2000L } from '../../src/protocol/constants.js';
import { P9Error } from '../../src/protocol/errno.js';
import { ReplyReader } from './reply-reader.js';
import { isMessage, type Message, type MessageName } from '../../src/protocol/messages.js';

/** Twrite data above this is sent from the caller's buffer rather than copied into the frame. */
const LARGE_WRITE = 16 << 10;

type TName = Extract<MessageName, `T${string}`>;
export type ReplyOf<N extends TName> = N extends `T${infer Rest}` ? (`R${Rest}` extends MessageName ? Message<`R${Rest}`> : never) : never;

/**
 * One 9P2000.L connection for the load generator: any number of requests in flight, each with a
 * tag of its own, replies matched by tag in whatever order they come. Nothing else: no fid
 * bookkeeping beyond a counter, no retries, so the generator spends its CPU on the wire.
 */
export class PipelinedConnection {
  private readonly pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  private readonly freeTags: number[] = [];
  private nextTag = 0;
  private nextFid = 1;
  msize = 0;
  /** Requests the server answered EOPNOTSUPP, which the workloads then replace as Linux does. */
  readonly unsupported = new Set<TName>();

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    const replies = new ReplyReader((m) => this.onReply(m));
    socket.on('data', (c: Buffer) => {
      try {
        replies.push(c);
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
    });
    socket.on('error', () => {});
  }

  /** Connect, negotiate `msize` and attach fid 0 as root to the export `aname`. */
  static async open(port: number, msize: number, aname: string): Promise<PipelinedConnection> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    const c = new PipelinedConnection(socket);
    const v = await c.send(message('Tversion', { tag: NOTAG, msize, version: VERSION_9P2000L }));
    if (!isMessage(v, 'Rversion') || v.version !== VERSION_9P2000L) throw new Error('server refused 9P2000.L');
    c.msize = v.msize;
    await c.rpc('Tattach', { fid: 0, afid: NOFID, uname: 'root', aname, nUname: 0 });
    return c;
  }

  /** The root fid every workload walks from. */
  get root(): number {
    return 0;
  }

  /** A fid number not used before on this connection (fids are never reused, so no clunk race). */
  newFid(): number {
    return this.nextFid++;
  }

  /** Send a request; resolve with its reply, or reject with P9Error for Rlerror. */
  async rpc<N extends TName>(name: N, fields: Omit<Message<N>, 'type' | 'tag'>): Promise<ReplyOf<N>> {
    const tag = this.freeTags.pop() ?? this.nextTag++;
    try {
      const r = await this.send(message(name, { ...fields, tag } as Omit<Message<N>, 'type'>));
      if (isMessage(r, 'Rlerror')) throw new P9Error(r.ecode);
      return r as ReplyOf<N>;
    } finally {
      this.freeTags.push(tag);
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private send(m: Message): Promise<Message> {
    return new Promise((resolve, reject) => {
      this.pending.set(m.tag, { resolve, reject });
      if (isMessage(m, 'Twrite') && m.data.length > LARGE_WRITE) {
        // The header, then the caller's data as it is, in one writev: copying each MiB into a
        // fresh frame made the generator, not the server, set the rate of large writes.
        const header = encode({ ...m, data: Buffer.alloc(0) });
        header.writeUInt32LE(header.length + m.data.length, 0);
        header.writeUInt32LE(m.data.length, header.length - 4); // count[4] ends the header
        this.socket.cork();
        this.socket.write(header);
        this.socket.write(m.data);
        this.socket.uncork();
      } else {
        this.socket.write(encode(m));
      }
    });
  }

  private onReply(m: Message): void {
    const p = this.pending.get(m.tag);
    if (!p) return;
    this.pending.delete(m.tag);
    p.resolve(m);
  }
}
