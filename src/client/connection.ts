import net from 'node:net';
import type { Duplex } from 'node:stream';
import { decode, encode } from '../protocol/codec.js';
import { NOTAG } from '../protocol/constants.js';
import { P9Error } from '../protocol/errno.js';
import { FrameSplitter } from '../protocol/frame-splitter.js';
import { isMessage, MessageType, type Message, type MessageName, type RMessage, type TMessage } from '../protocol/messages.js';
import { parseListenAddress } from '../transport/listen-address.js';

type TName = Extract<MessageName, `T${string}`>;
/** The reply type of a request: Twalk → Rwalk. */
export type ReplyTo<N extends TName> = N extends `T${infer Rest}` ? (`R${Rest}` extends MessageName ? Message<`R${Rest}`> : never) : never;

/** Lowest-free allocation from 0, as the Linux client does for tags and fids. */
export class IdPool {
  private readonly used = new Set<number>();
  private lowest = 0;

  constructor(private readonly limit: number) {}

  take(): number {
    let id = this.lowest;
    while (this.used.has(id)) id++;
    if (id >= this.limit) throw new Error('no free ids');
    this.used.add(id);
    this.lowest = id + 1;
    return id;
  }

  give(id: number): void {
    if (this.used.delete(id) && id < this.lowest) this.lowest = id;
  }
}

/**
 * One 9P connection from the client side: requests are pipelined, each gets the lowest free tag,
 * replies are matched by tag in any order. A reply with an unknown tag or an undecodable frame
 * breaks the connection, as it does in the Linux client.
 */
export class Connection {
  private readonly tags = new IdPool(NOTAG);
  private readonly pending = new Map<number, { resolve: (m: RMessage) => void; reject: (e: Error) => void }>();
  private broken: Error | null = null;
  msize = 8192;

  constructor(private readonly stream: Duplex) {
    const splitter = new FrameSplitter(
      {
        frame: (f) => this.onFrame(f),
        oversized: (_t, tag, size) => this.fail(new Error(`reply to tag ${tag} is ${size} bytes, more than msize ${this.msize}`)),
        malformed: (size) => this.fail(new Error(`malformed frame (size ${size})`)),
      },
      () => this.msize,
    );
    stream.on('data', (c: Buffer) => splitter.push(c));
    stream.on('close', () => this.fail(new Error('connection closed')));
    stream.on('error', (e) => this.fail(e));
  }

  /** Open a stream to `tcp:HOST:PORT`, `HOST:PORT` or `unix:PATH`. */
  static open(address: string): Promise<Connection> {
    const a = parseListenAddress(/^(tcp|unix):/.test(address) ? address : `tcp:${address}`);
    if (a.kind === 'stdio') throw new Error('cannot connect to stdio');
    return new Promise((resolve, reject) => {
      const s = a.kind === 'tcp' ? net.connect(a.port, a.host) : net.connect(a.path);
      s.once('connect', () => {
        s.off('error', reject);
        s.setNoDelay?.(true);
        resolve(new Connection(s));
      });
      s.once('error', reject);
    });
  }

  /** Send a request and wait for its reply; Rlerror rejects with P9Error. */
  rpc<N extends TName>(m: Omit<Message<N>, 'tag'> & { type: number }): Promise<ReplyTo<N>> {
    if (this.broken) return Promise.reject(this.broken);
    const tag = m.type === MessageType.Tversion ? NOTAG : this.tags.take();
    const full = { ...m, tag } as unknown as TMessage;
    return new Promise<RMessage>((resolve, reject) => {
      this.pending.set(tag, { resolve, reject });
      this.stream.write(encode(full));
    }).then((r) => {
      if (isMessage(r, 'Rlerror')) throw new P9Error(r.ecode);
      return r as ReplyTo<N>;
    });
  }

  /** Write arbitrary bytes: for tests of what a correct client never sends. */
  sendRaw(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  private onFrame(f: Buffer): void {
    let m: Message;
    try {
      m = decode(f);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    const p = this.pending.get(m.tag);
    if (!p) {
      this.fail(new Error(`reply with unknown tag ${m.tag}`));
      return;
    }
    this.pending.delete(m.tag);
    if (m.tag !== NOTAG) this.tags.give(m.tag);
    p.resolve(m as RMessage);
  }

  private fail(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.stream.destroy();
  }

  close(): void {
    this.fail(new Error('connection closed'));
  }
}
