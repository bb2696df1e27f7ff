import { pino, type Logger } from 'pino';
import { LocalBackend } from './backend/local/local-backend.js';
import { addressInPage } from './backend/local/sys.js';
import type { Multidevs } from './backend/local/qid-mapper.js';
import { createSecurityModel, type SecurityOptions } from './backend/local/create-model.js';
import { ByteBudget } from './server/byte-budget.js';
import type { HostPrivilege } from './server/host-privilege.js';
import { openIdentityPolicy, type IdentityPolicy } from './server/identity-policy.js';
import { checkLimits, defaultLimits, type Limits } from './server/limits.js';
import { LockWaiterCount } from './server/lock-waiters.js';
import { Server } from './server/server.js';
import { FramePool } from './server/frame-pool.js';
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
  /**
   * Which host privileges a guest may create where the model puts them on the host (passthrough,
   * none): device nodes, setuid/setgid files, security.* and trusted.* attributes. Default: none.
   */
  allowPrivileged?: readonly HostPrivilege[];
  /** Permission bits of a unix: socket (default 0600: only the server's user may connect). */
  socketMode?: number;
  /** How guest ownership, modes and special files map onto the host; default passthrough. */
  security?: SecurityOptions;
  /** Other filesystems mounted inside the export: remap (default), forbid or warn, as QEMU's multidevs. */
  multidevs?: Multidevs;
  /** Squash, id maps, allow list; default: guest ids are host ids and anyone may attach. */
  identity?: Partial<IdentityPolicy>;
  limits?: Partial<Limits>;
  /**
   * O_PATH descriptors looked-up objects may hold together (idle ones past it are reclaimed and
   * reopened by name on use); default half the soft RLIMIT_NOFILE.
   */
  maxDescriptors?: number;
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
    maxDescriptors: o.maxDescriptors,
    onMultidevWarning: (dev) =>
      log.warn({ dev: `${dev >> 8n}:${dev & 0xffn}` }, 'another filesystem is mounted inside the export: qid paths (guest inode numbers) may collide; use --multidevs remap'),
  });
  const refused = new Set<HostPrivilege>();
  const server = new Server({
    backend,
    policy: { readonly: o.readonly ?? false },
    hostPrivilege: {
      allowed: new Set(o.allowPrivileged ?? []),
      actsOnHost: backend.actsOnHost,
      onRefused: (p) => {
        if (refused.has(p)) return;
        refused.add(p);
        log.warn({ privilege: p }, `a guest was refused ${p === 'devices' ? 'a device node' : p === 'setid' ? 'a setuid/setgid file' : 'a security.* or trusted.* attribute'}; --allow-privileged ${p} allows it`);
      },
    },
    identity: { ...openIdentityPolicy, ...o.identity },
    limits,
    xattrBudget: new ByteBudget(limits.maxXattrBytes, 'server'),
    lockWaiters: new LockWaiterCount(limits.maxLockWaiters, 'the server'),
    stats: new ServerStats(),
    frames: new FramePool(limits.maxMsize, undefined, addressInPage),
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
    listener = await SocketListener.listen(server, address, o.socketMode ?? 0o600);
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
export type { HostPrivilege } from './server/host-privilege.js';
