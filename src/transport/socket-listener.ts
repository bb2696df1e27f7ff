import { lstat, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import type { Server } from '../server/server.js';
import { formatListenAddress, type ListenAddress } from './listen-address.js';
import { StreamConnection } from './stream-connection.js';

/** A TCP or Unix-socket listener: each accepted socket is its own connection. */
export class SocketListener {
  private readonly connections = new Set<StreamConnection>();

  private constructor(
    private readonly net: net.Server,
    readonly address: ListenAddress,
  ) {}

  /** `socketMode`: the permission bits of a unix socket, which decide who may connect. */
  static async listen(server: Server, address: ListenAddress & { kind: 'tcp' | 'unix' }, socketMode = 0o600): Promise<SocketListener> {
    const ns = net.createServer({ noDelay: true, pauseOnConnect: false });
    // Node closes connections beyond maxConnections at once and says so with 'drop'.
    ns.maxConnections = server.context.limits.maxConnections;
    const refused = refusalLog(server);
    ns.on('drop', () => refused());
    let listener!: SocketListener;
    ns.on('connection', (socket) => {
      socket.setNoDelay(true);
      const c = new StreamConnection(server, socket, socket);
      listener.connections.add(c);
      void c.closed.then(() => listener.connections.delete(c));
    });
    try {
      if (address.kind === 'unix') await prepareSocketPath(address.path);
      // bind(2) makes the socket file with the process umask (0 while serving): narrow it for
      // that one call, so the socket never exists with more than socketMode allows.
      const umask = address.kind === 'unix' ? process.umask(~socketMode & 0o777) : null;
      try {
        await new Promise<void>((resolve, reject) => {
          ns.once('error', reject);
          if (address.kind === 'tcp') ns.listen(address.port, address.host, resolve);
          else ns.listen(address.path, resolve);
        });
      } finally {
        if (umask !== null) process.umask(umask);
      }
    } catch (err) {
      throw listenError(address, err as NodeJS.ErrnoException);
    }
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

/** Time between two log lines about refused connections: a flood of them is one line, not many. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Log a connection refused for the limit: the first at once, later ones counted into one line per interval. */
function refusalLog(server: Server): () => void {
  let unlogged = 0;
  let quietUntil = 0;
  return () => {
    unlogged++;
    const now = Date.now();
    if (now < quietUntil) return;
    const limit = server.context.limits.maxConnections;
    server.context.log.warn({ refused: unlogged, maxConnections: limit }, `refusing connections beyond ${limit} (--max-connections)`);
    unlogged = 0;
    quietUntil = now + REFUSAL_LOG_INTERVAL_MS;
  };
}

// Node's own messages ("listen EACCES: permission denied /x/s") name the system call, not the
// cause a person can act on.
const listenReasons: Record<string, string> = {
  EADDRINUSE: 'address already in use (is another server running?)',
  EADDRNOTAVAIL: 'no such address on this machine',
  EACCES: 'permission denied',
  ENOENT: 'no such directory',
  ENOTDIR: 'no such directory',
};

function listenError(address: ListenAddress, err: NodeJS.ErrnoException): Error {
  // Errors raised here already say what is wrong; only the system's own get translated.
  const known = err.syscall !== undefined && err.code !== undefined ? listenReasons[err.code] : undefined;
  const reason = known ?? err.message;
  return Object.assign(new Error(`cannot listen on ${formatListenAddress(address)}: ${reason}`), { code: err.code });
}

/**
 * A socket file left by a server that died is removed; anything live, or not a socket, is an
 * error. A missing directory is reported as such (bind(2) would say EACCES or ENOENT).
 */
async function prepareSocketPath(path: string): Promise<void> {
  const dir = await stat(dirname(path)).catch(() => null);
  if (!dir?.isDirectory()) throw Object.assign(new Error(`${dirname(path)}: no such directory`), { code: 'ENOENT' });
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (!st.isSocket()) throw Object.assign(new Error(`${path} exists and is not a socket`), { code: 'ENOTSOCK' });
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw Object.assign(new Error('another server is listening there'), { code: 'EADDRINUSE' });
  await unlink(path);
}
