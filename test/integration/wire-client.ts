import net from 'node:net';
import { decode, encode, message } from '../../src/protocol/codec.js';
import { NOFID, NOTAG } from '../../src/protocol/constants.js';
import { P9Error } from '../../src/protocol/errno.js';
import { FrameSplitter } from '../../src/protocol/frame-splitter.js';
import { isMessage, type Message, type MessageName } from '../../src/protocol/messages.js';

type TName = Extract<MessageName, `T${string}`>;
type ReplyOf<N extends TName> = N extends `T${infer Rest}` ? (`R${Rest}` extends MessageName ? Message<`R${Rest}`> : never) : never;

/**
 * A minimal wire-level client for server tests: every request is one message, tags are unique,
 * replies are matched by tag (so requests can be pipelined), Rlerror rejects with its errno.
 */
export class WireClient {
  private nextTag = 0;
  private readonly pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  /** Replies in arrival order, for tests of ordering. */
  readonly arrivals: number[] = [];
  msize = 0;

  private constructor(private readonly socket: net.Socket) {
    const splitter = new FrameSplitter(
      {
        frame: (f) => this.onFrame(Buffer.from(f)),
        oversized: () => socket.destroy(),
        malformed: () => socket.destroy(),
      },
      () => 1 << 24,
    );
    socket.on('data', (c) => splitter.push(c));
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number, msize = 65536): Promise<WireClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    const c = new WireClient(socket);
    const r = await c.send(message('Tversion', { tag: NOTAG, msize, version: '9P2000.L' }));
    if (!isMessage(r, 'Rversion')) throw new Error('no Rversion');
    c.msize = r.msize;
    return c;
  }

  /** Connect and attach fid 0 as `uid`. */
  static async attach(port: number, uid = 0, msize = 65536): Promise<WireClient> {
    const c = await WireClient.connect(port, msize);
    await c.rpc('Tattach', { fid: 0, afid: NOFID, uname: '', aname: '', nUname: uid });
    return c;
  }

  private onFrame(f: Buffer): void {
    const m = decode(f);
    this.arrivals.push(m.tag);
    const p = this.pending.get(m.tag);
    if (!p) return;
    this.pending.delete(m.tag);
    p.resolve(m);
  }

  private send(m: Message): Promise<Message> {
    return new Promise((resolve, reject) => {
      this.pending.set(m.tag, { resolve, reject });
      this.socket.write(encode(m));
    });
  }

  allocTag(): number {
    const t = this.nextTag;
    this.nextTag = (this.nextTag + 1) % 0xffff;
    return t;
  }

  /** Send a request; resolve with its reply, or reject with P9Error for Rlerror. */
  async rpc<N extends TName>(name: N, fields: Omit<Message<N>, 'type' | 'tag'>, tag = this.allocTag()): Promise<ReplyOf<N>> {
    const r = await this.send(message(name, { ...fields, tag } as Omit<Message<N>, 'type'>));
    if (isMessage(r, 'Rlerror')) throw new P9Error(r.ecode);
    return r as ReplyOf<N>;
  }

  /** Clone `fid` onto `newfid` and walk `path` ("a/b/c"). */
  async walk(fid: number, newfid: number, path: string): Promise<Message<'Rwalk'>> {
    const wnames = path === '' ? [] : path.split('/').map((s) => Buffer.from(s));
    return this.rpc('Twalk', { fid, newfid, wnames });
  }

  close(): void {
    this.socket.destroy();
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }
}

export const b = (s: string): Buffer => Buffer.from(s);
