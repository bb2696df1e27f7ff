import { lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import type { Server } from '../server/server.js';
import type { ListenAddress } from './listen-address.js';
import { StreamConnection } from './stream-connection.js';

/** A TCP or Unix-socket listener: each accepted socket is its own connection. */
export class SocketListener {
  private readonly connections = new Set<StreamConnection>();

  private constructor(
    private readonly net: net.Server,
    readonly address: ListenAddress,
  ) {}

  static async listen(server: Server, address: ListenAddress & { kind: 'tcp' | 'unix' }): Promise<SocketListener> {
    const ns = net.createServer({ noDelay: true, pauseOnConnect: false });
    let listener!: SocketListener;
    ns.on('connection', (socket) => {
      socket.setNoDelay(true);
      const c = new StreamConnection(server, socket, socket);
      listener.connections.add(c);
      void c.closed.then(() => listener.connections.delete(c));
    });
    if (address.kind === 'unix') await removeStaleSocket(address.path);
    await new Promise<void>((resolve, reject) => {
      ns.once('error', reject);
      if (address.kind === 'tcp') ns.listen(address.port, address.host, resolve);
      else ns.listen(address.path, resolve);
    });
    const bound: ListenAddress =
      address.kind === 'tcp' ? { kind: 'tcp', host: address.host, port: (ns.address() as net.AddressInfo).port } : address;
    listener = new SocketListener(ns, bound);
    return listener;
  }

  /** Stop accepting, end every connection, and wait until all have released what they held. */
  async close(): Promise<void> {
    const closing = new Promise<void>((r) => this.net.close(() => r()));
    for (const c of this.connections) c.end();
    await Promise.all([...this.connections].map((c) => c.closed));
    await closing;
  }
}

/** A socket file left by a server that died is removed; anything live, or not a socket, is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (!st.isSocket()) throw Object.assign(new Error(`${path} exists and is not a socket`), { code: 'EEXIST' });
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw Object.assign(new Error(`${path}: another server is listening there`), { code: 'EADDRINUSE' });
  await unlink(path);
}
