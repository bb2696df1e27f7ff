import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { pino } from 'pino';
import { startServer, type RunningServer, type ServeOptions } from '../../src/index.js';
import assert from 'node:assert/strict';
import { decode, encode, message } from '../../src/protocol/codec.js';
import { NOFID, NOTAG } from '../../src/protocol/constants.js';
import { FrameSplitter } from '../../src/protocol/frame-splitter.js';
import { isMessage, type Message } from '../../src/protocol/messages.js';

export interface Fixture {
  root: string;
  running: RunningServer;
  port: number;
  address: string;
  close(): Promise<void>;
}

/** A server on a fresh temporary directory, listening on a free loopback port. */
export async function startFixture(opts: Partial<ServeOptions> = {}): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), 'virtfs-test-'));
  const running = await startServer({ root, listen: 'tcp:127.0.0.1:0', log: pino({ level: 'silent' }), ...opts });
  const a = running.address;
  const port = a.kind === 'tcp' ? a.port : 0;
  return {
    root,
    running,
    port,
    address: a.kind === 'tcp' ? `tcp:127.0.0.1:${port}` : a.kind === 'unix' ? `unix:${a.path}` : 'stdio',
    async close() {
      await running.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A bare socket speaking raw frames: for tests of what a well-behaved client never sends. */
export class RawPeer {
  private readonly frames: Buffer[] = [];
  private waiters: ((f: Buffer | null) => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    const splitter = new FrameSplitter(
      {
        frame: (f) => this.deliver(Buffer.from(f)),
        oversized: () => this.socket.destroy(),
        malformed: () => this.socket.destroy(),
      },
      () => 1 << 24,
    );
    socket.on('data', (c) => splitter.push(c));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters) w(null);
      this.waiters = [];
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  private deliver(f: Buffer): void {
    const w = this.waiters.shift();
    if (w) w(f);
    else this.frames.push(f);
  }

  send(m: Message | Buffer): void {
    this.socket.write(Buffer.isBuffer(m) ? m : encode(m));
  }

  /** The next reply, decoded; null if the server closed the connection. Fails after `ms`. */
  next(ms = 5000): Promise<Message | null> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(decode(f));
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms);
      this.waiters.push((fr) => {
        clearTimeout(t);
        resolve(fr ? decode(fr) : null);
      });
    });
  }

  /** Resolves true if the server closes the connection within `ms`. */
  waitClosed(ms = 5000): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A raw peer that has agreed 9P2000.L at `msize`. */
export async function negotiated(port: number, msize = 8192): Promise<RawPeer> {
  const p = await RawPeer.connect(port);
  p.send(message('Tversion', { tag: NOTAG, msize, version: '9P2000.L' }));
  const r = await p.next();
  assert.ok(r && isMessage(r, 'Rversion'));
  return p;
}

/** A raw peer with fid 0 attached to the export as root. */
export async function attached(port: number, msize = 8192): Promise<RawPeer> {
  const p = await negotiated(port, msize);
  p.send(message('Tattach', { tag: 1, fid: 0, afid: NOFID, uname: 'root', aname: '', nUname: 0 }));
  const r = await p.next();
  assert.ok(r && isMessage(r, 'Rattach'), `attach failed: ${r && isMessage(r, 'Rlerror') ? r.ecode : r?.type}`);
  return p;
}
