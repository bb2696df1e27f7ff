import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { DEFAULT_DMODE, DEFAULT_FMODE } from '../backend/local/create-model.js';
import { securityModelNames, type SecurityModelName } from '../backend/local/security-model.js';
import { multidevsPolicies, type Multidevs } from '../backend/local/qid-mapper.js';
import { raiseFdLimit } from '../backend/local/sys.js';
import { startServer } from '../index.js';
import { startWarmUp } from '../warm-up.js';
import { MIN_MSIZE } from '../protocol/constants.js';
import { parseHostPrivileges, type HostPrivilege } from '../server/host-privilege.js';
import { checkIdRanges, NOBODY, parseIdRange, type IdRange } from '../server/identity-policy.js';
import { defaultLimits, MIN_QUEUED_REPLY_BYTES } from '../server/limits.js';
import { passwdLookup } from '../server/users.js';
import { DEFAULT_LISTEN, formatListenAddress, isLoopback, parseListenAddress } from '../transport/listen-address.js';
import { dropPrivileges, parseUserArg, type RunAs } from './drop-privileges.js';
import { mountLines } from './mount-hint.js';
import { integer } from './option-parsers.js';

/** A positive number of seconds, fractions allowed (tests use short timeouts); returns milliseconds. */
function seconds(v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new InvalidArgumentError(`"${v}" is not a positive number of seconds`);
  return Math.round(Number(v) * 1000);
}

function mode(v: string): number {
  if (!/^0?[0-7]{1,4}$/.test(v)) throw new InvalidArgumentError(`"${v}" is not an octal mode such as 0600`);
  return parseInt(v, 8);
}

/** QEMU's spellings: "mapped" is mapped-xattr. */
function securityModel(v: string): SecurityModelName {
  const name = v === 'mapped' ? 'mapped-xattr' : v;
  if (!(securityModelNames as readonly string[]).includes(name)) {
    throw new InvalidArgumentError(`"${v}" is not one of ${securityModelNames.join(', ')} (or mapped)`);
  }
  return name as SecurityModelName;
}

function idRange(v: string, previous: IdRange[]): IdRange[] {
  try {
    return [...previous, parseIdRange(v)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Names or numbers, comma-separated; names are looked up in the host's /etc/passwd. */
function userList(v: string): number[] {
  const known = passwdLookup();
  return v.split(',').filter(Boolean).map((u) => {
    if (/^\d+$/.test(u)) return Number(u);
    const uid = known(u, -1);
    if (uid < 0) throw new InvalidArgumentError(`no user named "${u}"`);
    return uid;
  });
}

function userArg(v: string): RunAs {
  try {
    return parseUserArg(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function privileges(v: string): HostPrivilege[] {
  try {
    return parseHostPrivileges(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function listenArg(v: string): string {
  try {
    parseListenAddress(v);
    return v;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

interface ServeFlags {
  listen: string;
  readonly?: boolean;
  msize: number;
  debug?: boolean;
  create?: boolean;
  maxFids: number;
  maxRequests: number;
  maxReplyQueue: number;
  maxXattrBytes: number;
  maxConnections: number;
  handshakeTimeout: number;
  frameTimeout: number;
  maxDescriptors?: number;
  maxLockWaiters: number;
  maxLockWaitersPerConnection: number;
  securityModel: SecurityModelName;
  fmode: number;
  dmode: number;
  user?: RunAs;
  squash?: 'root' | 'all';
  anonUid: number;
  anonGid: number;
  uidMap: IdRange[];
  gidMap: IdRange[];
  allowUsers?: number[];
  multidevs: Multidevs;
  allowPrivileged: HostPrivilege[];
  socketMode: number;
  warmUp: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('export a directory over 9P2000.L')
    .argument('<path>', 'directory to export')
    .addOption(
      new Option('-l, --listen <address>', 'tcp:HOST:PORT, unix:PATH, or stdio (one connection on stdin/stdout)')
        .default(DEFAULT_LISTEN)
        .argParser(listenArg),
    )
    .addOption(new Option('--socket-mode <mode>', 'permission bits of a unix: socket, which decide who may connect').default(0o600, '0600').argParser(mode))
    .option('--readonly', 'refuse every change: writes, creates, renames, removes, setattr, xattr sets (EROFS)')
    .addOption(
      new Option('--msize <bytes>', 'largest message size the server agrees to (the kernel caps tcp/unix/fd at 1 MiB)')
        .default(defaultLimits.maxMsize)
        .argParser(integer(MIN_MSIZE, 0xffffffff)),
    )
    .addOption(
      new Option('--max-fids <n>', 'fids one connection may hold (EMFILE beyond)').default(defaultLimits.maxFidsPerConnection).argParser(integer(1, 2 ** 31)),
    )
    .addOption(
      new Option('--max-requests <n>', 'requests one connection may have in progress (the server stops reading beyond)')
        .default(defaultLimits.maxRequestsInFlight)
        .argParser(integer(1, 65535)),
    )
    .addOption(
      new Option('--max-reply-queue <bytes>', 'reply bytes queued for a client that does not read them, beyond which the server stops reading it')
        .default(defaultLimits.maxQueuedReplyBytes)
        .argParser(integer(MIN_QUEUED_REPLY_BYTES, 2 ** 40)),
    )
    .addOption(
      new Option('--max-xattr-bytes <bytes>', 'xattr values held between Txattrwalk/Txattrcreate and Tclunk, all connections together (ENOSPC beyond)')
        .default(defaultLimits.maxXattrBytes)
        .argParser(integer(0, 2 ** 40)),
    )
    .addOption(
      new Option('--max-connections <n>', 'connections served at once; any beyond are closed (and logged)')
        .default(defaultLimits.maxConnections)
        .argParser(integer(1, 2 ** 20)),
    )
    .addOption(
      new Option('--handshake-timeout <seconds>', 'close a connection that has not agreed a version this long after connecting (0: never)')
        .default(defaultLimits.handshakeTimeoutMs, 'never')
        .argParser((v) => (v === '0' ? 0 : seconds(v))),
    )
    .addOption(
      new Option('--frame-timeout <seconds>', 'close a connection whose partly sent message gets no further byte for this long')
        .default(defaultLimits.frameTimeoutMs, String(defaultLimits.frameTimeoutMs / 1000))
        .argParser(seconds),
    )
    .addOption(
      new Option('--max-descriptors <n>', 'descriptors looked-up files and directories may hold together; idle ones beyond are closed and reopened by name when used (default: half the descriptor limit)').argParser(
        integer(1, 2 ** 31),
      ),
    )
    .addOption(
      new Option('--max-lock-waiters <n>', 'blocking lock requests waiting over all connections (ENOLCK beyond)')
        .default(defaultLimits.maxLockWaiters)
        .argParser(integer(0, 2 ** 31)),
    )
    .addOption(
      new Option('--max-lock-waiters-per-connection <n>', 'blocking lock requests one connection may have waiting (ENOLCK beyond)')
        .default(defaultLimits.maxLockWaitersPerConnection)
        .argParser(integer(0, 2 ** 31)),
    )
    .addOption(
      new Option('--security-model <model>', 'how guest owners, modes and special files map onto the host: passthrough, mapped-xattr (alias mapped), mapped-file or none')
        .default('passthrough' as SecurityModelName)
        .argParser(securityModel),
    )
    .addOption(
      new Option(
        '--allow-privileged <list>',
        'in passthrough and none, let guests make what gives privilege on the host: devices, setid (setuid/setgid files), xattrs (security.*, trusted.*), or all (EPERM otherwise)',
      )
        .default([], 'none')
        .argParser(privileges),
    )
    .addOption(new Option('--fmode <mode>', 'host mode of files the mapped models create').default(DEFAULT_FMODE, '0600').argParser(mode))
    .addOption(new Option('--dmode <mode>', 'host mode of directories the mapped models create').default(DEFAULT_DMODE, '0700').argParser(mode))
    .addOption(
      new Option('--user <user[:group]>', 'started as root: open the export and listen, then run as this user (name or number)').argParser(userArg),
    )
    .addOption(new Option('--squash <who>', 'root: the guest\'s root acts as the anonymous user; all: every guest user does').choices(['root', 'all']))
    .addOption(new Option('--anon-uid <uid>', 'the anonymous user (squashed and unmapped users)').default(NOBODY).argParser(integer(0, 0xfffffffe)))
    .addOption(new Option('--anon-gid <gid>', 'the anonymous group').default(NOBODY).argParser(integer(0, 0xfffffffe)))
    .addOption(new Option('--uid-map <range>', 'GUEST:HOST:COUNT: guest uids GUEST.. are host uids HOST.. (repeatable); unmapped ones act and show as anonymous').default([], 'none').argParser(idRange))
    .addOption(new Option('--gid-map <range>', 'GUEST:HOST:COUNT for gids (repeatable)').default([], 'none').argParser(idRange))
    .addOption(new Option('--allow-users <list>', 'only these guest users (names or uids, comma-separated) may attach; others get EPERM').argParser(userList))
    .addOption(
      new Option('--multidevs <policy>', 'other filesystems mounted inside the export: remap (distinct inode numbers), forbid (ENODEV) or warn (raw, may collide)')
        .choices(multidevsPolicies)
        .default('remap'),
    )
    .option('--create', 'create the directory if it does not exist')
    .option('--no-warm-up', "do not run a guest's mix of requests through the server's own code at start, on a scratch directory (it makes a new server's first requests about as cheap as later ones)")
    .option('-d, --debug', 'trace every request and reply, one line each, on stderr')
    .action(async (path: string, flags: ServeFlags) => serve(path, flags));
}

/** Below this many descriptors a guest working through a source tree or a root filesystem runs out. */
const LOW_FD_LIMIT = 16384;

async function serve(path: string, flags: ServeFlags): Promise<void> {
  checkIdRanges(flags.uidMap, '--uid-map');
  checkIdRanges(flags.gidMap, '--gid-map');
  const fdLimit = raiseFdLimit();
  const root = resolve(path);
  if (flags.create) await mkdir(root, { recursive: true });
  const st = await stat(root).catch(() => null);
  if (!st) throw new Error(`${path}: no such directory${flags.create ? '' : ' (--create makes it)'}`);
  if (!st.isDirectory()) throw new Error(`${path}: not a directory`);
  const log = pino({ level: flags.debug ? 'debug' : 'warn', base: null }, pino.destination(2));
  const security = { model: flags.securityModel, fmode: flags.fmode, dmode: flags.dmode };
  const running = await startServer({
    root,
    listen: flags.listen,
    readonly: flags.readonly ?? false,
    allowPrivileged: flags.allowPrivileged,
    socketMode: flags.socketMode,
    security,
    multidevs: flags.multidevs,
    identity: {
      squash: flags.squash ?? 'none',
      anonUid: flags.anonUid,
      anonGid: flags.anonGid,
      uidMap: flags.uidMap,
      gidMap: flags.gidMap,
      allowUsers: flags.allowUsers ? new Set(flags.allowUsers) : null,
    },
    limits: {
      maxMsize: flags.msize,
      maxFidsPerConnection: flags.maxFids,
      maxRequestsInFlight: flags.maxRequests,
      maxQueuedReplyBytes: flags.maxReplyQueue,
      maxXattrBytes: flags.maxXattrBytes,
      maxConnections: flags.maxConnections,
      handshakeTimeoutMs: flags.handshakeTimeout,
      frameTimeoutMs: flags.frameTimeout,
      maxLockWaiters: flags.maxLockWaiters,
      maxLockWaitersPerConnection: flags.maxLockWaitersPerConnection,
    },
    maxDescriptors: flags.maxDescriptors,
    trace: flags.debug ? (c, line) => process.stderr.write(`virtfs[${c}] ${line}\n`) : undefined,
    log,
  });
  if (flags.user) {
    try {
      dropPrivileges(flags.user);
    } catch (err) {
      await running.close();
      throw err;
    }
  }
  // After dropping privileges: the scratch directory is the serving user's.
  const warming = flags.warmUp ? startWarmUp({ security, log }) : null;
  // Before saying where it serves: whoever waits for that line may signal at once, and a signal
  // with no handler yet would kill the process without closing.
  const stop = () => void Promise.all([warming?.stop(), running.close()]).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const a = running.address;
  // With stdio, stdout carries the protocol: everything for people goes to stderr.
  const say = (s: string) => (a.kind === 'stdio' ? process.stderr : process.stdout).write(`${s}\n`);
  const as = flags.user ? `, as uid ${process.getuid?.()}` : '';
  say(`virtfs: serving ${root} (${flags.readonly ? 'read-only' : 'read-write'}, ${flags.securityModel}${as}) on ${formatListenAddress(a)}`);
  if (a.kind === 'tcp' && !isLoopback(a.host)) say('virtfs: warning: listening beyond this machine; 9P has no authentication or encryption');
  const actsOnHost = flags.securityModel === 'passthrough' || flags.securityModel === 'none';
  if (a.kind === 'tcp' && actsOnHost && flags.allowPrivileged.length > 0) {
    say(`virtfs: warning: --allow-privileged ${flags.allowPrivileged.join(',')} on a TCP listener gives whoever can connect what host root has; serve unix: or keep it to trusted guests`);
  }
  if (fdLimit >= 0 && fdLimit < LOW_FD_LIMIT) {
    say(`virtfs: warning: the descriptor limit is ${fdLimit} (ulimit -Hn); every file a guest has open holds one, past the limit opens fail with EMFILE, and looked-up files are reopened more often`);
  }
  const lines = mountLines(a, flags.msize);
  if (lines.length) {
    say(a.kind === 'tcp' && isLoopback(a.host) ? 'In a QEMU guest with user networking (-nic user), mount it with:' : 'Mount it with:');
    for (const l of lines) say(`  ${l}`);
  }
  await running.done;
  await Promise.all([warming?.stop(), running.close()]);
}
