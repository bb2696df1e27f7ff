import { pino, type Logger } from 'pino';
import { LocalBackend } from './backend/local/local-backend.js';
import type { Multidevs } from './backend/local/qid-mapper.js';
import { createSecurityModel, type SecurityOptions } from './backend/local/create-model.js';
import { openIdentityPolicy, type IdentityPolicy } from './server/identity-policy.js';
import { checkLimits, defaultLimits, type Limits } from './server/limits.js';
import { LockWaiterCount } from './server/lock-waiters.js';
import { Server } from './server/server.js';
import { ServerStats } from './server/stats.js';
import { passwdLookup } from './server/users.js';
import { DEFAULT_LISTEN, parseListenAddress, type ListenAddress } from './transport/listen-address.js';
import { SocketListener } from './transport/socket-listener.js';
import { StreamConnection } from './transport/stream-connection.js';

export interface ServeOptions {
  /** The directory to export. */
  root: string;
  /** `tcp:HOST:PORT`, `unix:PATH` or `stdio`; default tcp:127.0.0.1:5640. */
  listen?: string;
  readonly?: boolean;
  /** How guest ownership, modes and special files map onto the host; default passthrough. */
  security?: SecurityOptions;
  /** Other filesystems mounted inside the export: remap (default), forbid or warn, as QEMU's multidevs. */
  multidevs?: Multidevs;
  /** Squash, id maps, allow list; default: guest ids are host ids and anyone may attach. */
  identity?: Partial<IdentityPolicy>;
  limits?: Partial<Limits>;
  /** Called with one line per request and reply (the --debug trace). */
  trace?: (connection: number, line: string) => void;
  log?: Logger;
}

export interface RunningServer {
  /** Where it really listens (tcp port 0 resolved to the port chosen). */
  address: ListenAddress;
  server: Server;
  /** For stdio: resolves when the single connection has ended. */
  done: Promise<void>;
  close(): Promise<void>;
}

/** Export a directory over 9P2000.L. */
export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const limits = { ...defaultLimits, ...o.limits };
  checkLimits(limits);
  const address = parseListenAddress(o.listen ?? DEFAULT_LISTEN);
  const log = o.log ?? pino({ level: 'warn' }, pino.destination(2));
  const backend = await LocalBackend.open({
    root: o.root,
    model: createSecurityModel(o.security ?? { model: 'passthrough' }),
    multidevs: o.multidevs,
    onMultidevWarning: (dev) =>
      log.warn({ dev: `${dev >> 8n}:${dev & 0xffn}` }, 'another filesystem is mounted inside the export: qid paths (guest inode numbers) may collide; use --multidevs remap'),
  });
  const server = new Server({
    backend,
    policy: { readonly: o.readonly ?? false },
    identity: { ...openIdentityPolicy, ...o.identity },
    limits,
    lockWaiters: new LockWaiterCount(limits.maxLockWaiters, 'the server'),
    stats: new ServerStats(),
    log,
    trace: o.trace,
    uidOf: passwdLookup(),
  });
  if (address.kind === 'stdio') {
    const c = new StreamConnection(server, process.stdin, process.stdout);
    return { address, server, done: c.closed, close: async () => (c.end(), await c.closed, await server.close()) };
  }
  let listener: SocketListener;
  try {
    listener = await SocketListener.listen(server, address);
  } catch (err) {
    await server.close();
    throw err;
  }
  let closed: Promise<void> | null = null;
  const close = () => (closed ??= listener.close().then(() => server.close()));
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  return { address: listener.address, server, done, close: () => close().then(resolveDone) };
}

export { Server } from './server/server.js';
export { defaultLimits, type Limits } from './server/limits.js';
export type { SecurityOptions } from './backend/local/create-model.js';
export type { IdentityPolicy, IdRange } from './server/identity-policy.js';
