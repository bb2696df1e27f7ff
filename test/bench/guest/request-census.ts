import net from 'node:net';
import { errnoName } from '../../../src/protocol/errno.js';
import { FrameSplitter } from '../../../src/protocol/frame-splitter.js';
import { messageName } from '../../../src/protocol/messages.js';

/** Per request type: how many, how many failed and with what, and the time to their replies. */
export interface TypeCensus {
  requests: number;
  requestBytes: number;
  replyBytes: number;
  errors: Map<string, number>;
  /** Sum of request-to-reply times seen at the proxy, nanoseconds. */
  latencyNs: bigint;
}

export type Census = Map<string, TypeCensus>;

/** Larger than any msize the Linux client asks (1 MiB over tcp). */
const MAX_FRAME = 1 << 24;

/**
 * A TCP proxy in front of a server that counts the 9P requests passing through it, by type, with
 * their errors and the time each took to be answered as seen from the proxy. Both servers get
 * the same proxy, so they pay its hop alike. For diagnosis: which requests the client sends to
 * each server, and which of them take longer.
 */
export class RequestCensus {
  private readonly totals: Census = new Map();
  private readonly server: net.Server;

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async start(targetPort: number): Promise<RequestCensus> {
    const server = net.createServer();
    const c = new RequestCensus(server);
    server.on('connection', (client) => c.relay(client, targetPort));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return c;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The counts so far; the caller keeps it and subtracts with {@link since}. */
  snapshot(): Census {
    const copy: Census = new Map();
    for (const [k, v] of this.totals) copy.set(k, { ...v, errors: new Map(v.errors) });
    return copy;
  }

  since(earlier: Census): Census {
    const out: Census = new Map();
    for (const [k, now] of this.totals) {
      const was = earlier.get(k);
      const errors = new Map<string, number>();
      for (const [e, n] of now.errors) {
        const d = n - (was?.errors.get(e) ?? 0);
        if (d) errors.set(e, d);
      }
      const d: TypeCensus = {
        requests: now.requests - (was?.requests ?? 0),
        requestBytes: now.requestBytes - (was?.requestBytes ?? 0),
        replyBytes: now.replyBytes - (was?.replyBytes ?? 0),
        errors,
        latencyNs: now.latencyNs - (was?.latencyNs ?? 0n),
      };
      if (d.requests) out.set(k, d);
    }
    return out;
  }

  close(): void {
    this.server.close();
  }

  private entry(type: string): TypeCensus {
    let e = this.totals.get(type);
    if (!e) this.totals.set(type, (e = { requests: 0, requestBytes: 0, replyBytes: 0, errors: new Map(), latencyNs: 0n }));
    return e;
  }

  private relay(client: net.Socket, targetPort: number): void {
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pending = new Map<number, { type: string; at: bigint }>();
    frames(client, (type, tag, frame) => {
      const name = messageName(type);
      const e = this.entry(name);
      e.requests++;
      e.requestBytes += frame.length;
      pending.set(tag, { type: name, at: process.hrtime.bigint() });
      upstream.write(frame);
    });
    frames(upstream, (type, tag, frame) => {
      const p = pending.get(tag);
      pending.delete(tag);
      if (p) {
        const e = this.entry(p.type);
        e.latencyNs += process.hrtime.bigint() - p.at;
        e.replyBytes += frame.length;
        if (messageName(type) === 'Rlerror') {
          const name = errnoName(frame.readUInt32LE(7));
          e.errors.set(name, (e.errors.get(name) ?? 0) + 1);
        }
      }
      client.write(frame);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }
}

/** Hand each whole 9P frame the socket brings to `onFrame` (the server's own splitter). */
function frames(s: net.Socket, onFrame: (type: number, tag: number, frame: Buffer) => void): void {
  const splitter = new FrameSplitter(
    {
      frame: (f) => onFrame(f[4]!, f.readUInt16LE(5), f),
      oversized: () => s.destroy(),
      malformed: () => s.destroy(),
    },
    () => MAX_FRAME,
  );
  s.on('data', (chunk: Buffer) => splitter.push(chunk));
}

/**
 * A markdown table per step and run: each request type with its count and mean time to reply
 * on each server, and the errors it got.
 */
export function formatCensus(census: Map<string, Census>, servers: readonly string[]): string {
  const steps = [...new Set([...census.keys()].map((k) => k.replace(/^\S+ /, '')))];
  const out: string[] = [];
  for (const step of steps) {
    const of = servers.map((s) => census.get(`${s} ${step}`) ?? new Map<string, TypeCensus>());
    const types = [...new Set(of.flatMap((c) => [...c.keys()]))];
    types.sort((a, b) => Math.max(...of.map((c) => c.get(b)?.requests ?? 0)) - Math.max(...of.map((c) => c.get(a)?.requests ?? 0)));
    out.push(`requests of ${step} (mean time from request to reply, at the proxy):`, '');
    out.push(`| request | ${servers.map((s) => `${s} n | ${s} µs | ${s} errors`).join(' | ')} |`);
    out.push(`|---|${servers.map(() => '---:|---:|---|').join('')}`);
    for (const t of types) {
      const cells = of.map((c) => {
        const e = c.get(t);
        if (!e) return '0 | | ';
        const us = Number(e.latencyNs / BigInt(e.requests)) / 1000;
        return `${e.requests} | ${us.toFixed(0)} | ${[...e.errors].map(([k, n]) => `${k} ${n}`).join(', ')}`;
      });
      out.push(`| ${t} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
