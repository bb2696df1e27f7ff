/**
 * Typed access to the system-call addon (native/virtfs.c).
 *
 * Each function is one (or a few) Linux system calls; all policy lives in the
 * callers. Every call that touches the disk returns a Promise. It runs on the
 * libuv thread pool, unless its descriptors were opened below one given to
 * {@link markLocal} and it is a cheap metadata call (or a read the page cache
 * holds, or a small write into it, see {@link setWritesInline}): then it runs at
 * once on the calling thread, saving the pool's hop. Failures reject with a
 * {@link SysError}: `.errno` is the
 * positive errno, `.code` its name ('ENOENT'), `.syscall` the failing call.
 * Wrong argument types throw a TypeError synchronously; out-of-range buffer
 * windows and bigints a RangeError.
 *
 * Names and paths are raw bytes (host names need not be UTF-8); a name with a
 * NUL byte rejects with EINVAL, one of PATH_MAX bytes or more with ENAMETOOLONG.
 * 64-bit quantities are bigints. Every fd is opened O_CLOEXEC.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Stat vector from statx(2); signed seconds hold their two's-complement bits. */
export type RawStat = BigUint64Array;

export const StatIndex = {
  dev: 0,
  ino: 1,
  mode: 2,
  nlink: 3,
  uid: 4,
  gid: 5,
  rdev: 6,
  size: 7,
  blksize: 8,
  blocks: 9,
  atimeSec: 10,
  atimeNsec: 11,
  mtimeSec: 12,
  mtimeNsec: 13,
  ctimeSec: 14,
  ctimeNsec: 15,
  btimeSec: 16,
  btimeNsec: 17,
  /** Mapped models' metadata read with the stat (see {@link MetaSource}): bits 0..3 = uid, gid, mode, rdev found; see {@link MetaFound}. */
  metaFound: 18,
  metaUid: 19,
  metaGid: 20,
  metaMode: 21,
  metaRdev: 22,
} as const;

/**
 * Where a mapped model keeps the guest's uid, gid, mode and rdev, read by calls that stat into the
 * stat vector in the same thread-pool hop. An xattr prefix such as `user.virtfs.`: the object's
 * PREFIX{uid,gid,mode,rdev} (QEMU's mapped-xattr format: u32 LE, u64 LE for rdev). Or, for QEMU's
 * mapped-file format, the names of its text files: entry NAME of directory D is described by
 * D/dir/NAME, the export root by ROOT/root. Those are found by name: openPath and walk know it,
 * fstat must be told (see {@link MetaAt}); "." and ".." never have any. Host symlinks are never
 * read through.
 */
export type MetaSource = Uint8Array | MetaFiles | undefined;

export interface MetaFiles {
  dir: Uint8Array;
  root: Uint8Array;
}

/** Where {@link MetaFiles} metadata of an object is: entry `name` of directory `dir`, or the root's own (`dir` is the root) when name is null. */
export interface MetaAt {
  dir: number;
  name: Buffer | null;
}

/** Bits of StatIndex.metaFound. */
export const MetaFound = { uid: 1n, gid: 2n, mode: 4n, rdev: 8n, /** a directory with a {@link MetaFiles} directory in it */ dir: 16n } as const;

/** Indexes into the fstatfs() result. fsid is val[0] | val[1] << 32. */
export const StatfsIndex = {
  type: 0,
  bsize: 1,
  blocks: 2,
  bfree: 3,
  bavail: 4,
  files: 5,
  ffree: 6,
  fsid: 7,
  namelen: 8,
} as const;

/** The rejection value of every call. */
export interface SysError extends Error {
  errno: number;
  code: string;
  syscall: string;
}

export function isSysError(e: unknown): e is SysError {
  return e instanceof Error && typeof (e as Partial<SysError>).errno === 'number';
}

export interface WalkResult {
  /**
   * fds of the successfully walked prefix; the caller owns (and closes) all of them. -1 for a
   * step that is still the object the caller gave as known there (nothing was opened for it).
   */
  fds: number[];
  stats: RawStat[];
  /** 0 if every name was walked, else the errno of the first failure. */
  errno: number;
}

/** A WalkResult as the addon makes it (an object built from C costs more than the walk's openat). */
type NativeWalk = [fds: number[], stats: RawStat[], errno: number];

const walkResult = ([fds, stats, errno]: NativeWalk): WalkResult => ({ fds, stats, errno });

/** A lock as 9P numbers it: type 0 RDLCK, 1 WRLCK, 2 UNLCK. */
export interface LockInfo {
  type: number;
  start: bigint;
  length: bigint;
  pid: number;
}

type HostConstants = Record<
  | 'O_RDONLY' | 'O_WRONLY' | 'O_RDWR' | 'O_ACCMODE' | 'O_CREAT' | 'O_EXCL' | 'O_NOCTTY' | 'O_TRUNC'
  | 'O_APPEND' | 'O_NONBLOCK' | 'O_DSYNC' | 'O_DIRECT' | 'O_LARGEFILE' | 'O_DIRECTORY' | 'O_NOFOLLOW'
  | 'O_NOATIME' | 'O_CLOEXEC' | 'O_SYNC' | 'O_PATH' | 'AT_REMOVEDIR' | 'RENAME_NOREPLACE' | 'RENAME_EXCHANGE'
  | 'S_IFMT' | 'S_IFREG' | 'S_IFDIR' | 'S_IFLNK' | 'S_IFCHR' | 'S_IFBLK' | 'S_IFIFO' | 'S_IFSOCK'
  | 'UTIME_NOW' | 'UTIME_OMIT' | 'XATTR_CREATE' | 'XATTR_REPLACE',
  number
>;

interface Native {
  constants: HostConstants;
  openPath(dirfd: number, name: Uint8Array, meta?: MetaSource): Promise<[number, RawStat]>;
  walk(dirfd: number, names: Uint8Array[], meta?: MetaSource, known?: Int32Array): Promise<NativeWalk>;
  openRoot(path: Uint8Array, meta?: MetaSource): Promise<[number, RawStat]>;
  fstat(fd: number, meta?: MetaSource, at?: number, name?: Uint8Array): Promise<RawStat>;
  fstatNow(fd: number, meta?: MetaSource): RawStat | undefined;
  walkNow(dirfd: number, names: Uint8Array[], meta?: MetaSource, known?: Int32Array): NativeWalk | undefined;
  reopenNow(fd: number, flags: number): number | undefined;
  preadNow(fd: number, buf: Uint8Array, bufOffset: number, length: number, position: bigint): number | undefined;
  reopen(fd: number, flags: number): Promise<number>;
  openat(dirfd: number, name: Uint8Array, flags: number, mode: number, uid?: number, gid?: number): Promise<number>;
  close(fd: number): Promise<void>;
  closeSync(fd: number): void;
  pread(fd: number, buf: Uint8Array, bufOffset: number, length: number, position: bigint): Promise<number>;
  pwrite(fd: number, buf: Uint8Array, bufOffset: number, length: number, position: bigint, uid?: number, gid?: number): Promise<number>;
  pwritev(fd: number, bufs: readonly Uint8Array[], position: bigint, uid?: number, gid?: number): Promise<number>;
  getdents(fd: number, cookie: bigint, buf: Uint8Array): Promise<number>;
  readdir9p(fd: number, cookie: bigint, frame: Uint8Array, offset: number, limit: number, typeMap: Uint8Array, pathPrefix: bigint, maxIno: bigint, dotdotPath: bigint, reserved?: Uint8Array): Promise<[number, bigint, boolean]>;
  readdir9pNow(fd: number, cookie: bigint, frame: Uint8Array, offset: number, limit: number, typeMap: Uint8Array, pathPrefix: bigint, maxIno: bigint, dotdotPath: bigint, reserved?: Uint8Array): [number, bigint, boolean] | undefined;
  mkdirat(dirfd: number, name: Uint8Array, mode: number, uid?: number, gid?: number): Promise<void>;
  mknodat(dirfd: number, name: Uint8Array, mode: number, dev: bigint, uid?: number, gid?: number): Promise<void>;
  symlinkat(target: Uint8Array, dirfd: number, name: Uint8Array, uid?: number, gid?: number): Promise<void>;
  readlink(fd: number): Promise<Buffer>;
  linkat(fd: number, newdirfd: number, newname: Uint8Array): Promise<void>;
  renameat(olddirfd: number, oldname: Uint8Array, newdirfd: number, newname: Uint8Array, flags: number): Promise<void>;
  unlinkat(dirfd: number, name: Uint8Array, flags: number): Promise<void>;
  fchown(fd: number, uid: number, gid: number): Promise<void>;
  fchmod(fd: number, mode: number): Promise<void>;
  utimens(fd: number, atimeSec: bigint, atimeNsec: bigint, mtimeSec: bigint, mtimeNsec: bigint): Promise<void>;
  truncate(fd: number, size: bigint, isOpen: boolean): Promise<void>;
  fsync(fd: number, datasync: boolean): Promise<void>;
  fstatfs(fd: number): Promise<BigUint64Array>;
  getxattr(fd: number, name: Uint8Array): Promise<Buffer>;
  listxattr(fd: number): Promise<Buffer>;
  setxattr(fd: number, name: Uint8Array, value: Uint8Array, flags: number): Promise<void>;
  removexattr(fd: number, name: Uint8Array): Promise<void>;
  lock(fd: number, type: number, start: bigint, length: bigint): Promise<boolean>;
  getlock(fd: number, type: number, start: bigint, length: bigint): Promise<LockInfo>;
  openFdCount(): number;
  raiseFdLimit(): number;
  setAmbientCredentials(uid?: number, gid?: number): void;
  markLocal(fd: number): void;
  setWritesInline(yes: boolean): void;
  addressInPage(bytes: Uint8Array): number;
  execve(path: string, argv: string[], env: string[]): never;
}

// Compiled to dist/src/backend/local/sys.js: the repository root is four levels up.
const addonPath = fileURLToPath(new URL('../../../../build/Release/virtfs_native.node', import.meta.url));
const native = confinable(createRequire(import.meta.url)(addonPath) as Native);

/** A user whose every system call runs as that user, without capabilities (see {@link runConfined}). */
export interface ConfinedUser {
  uid: number;
  gid: number;
}

const confinedUser = new AsyncLocalStorage<ConfinedUser>();

/**
 * Run `fn` so that every system call it makes, across all its awaits, runs as `user` (fsuid,
 * fsgid, groups [gid]) with no capabilities: the host then refuses whatever that user may not do
 * (read another's 0600 file, chown, mknod a device, set trusted.* or file capabilities). Explicit
 * create credentials still name the new object's owner. Costs nothing until first used.
 */
export function runConfined<T>(user: ConfinedUser, fn: () => T | Promise<T>): T | Promise<T> {
  return confinedUser.run(user, fn);
}

/** Wrap the addon's disk calls: the ambient user is read when a call starts, on the JS thread. */
function confinable(raw: Native): Native {
  const local = new Set(['closeSync', 'openFdCount', 'raiseFdLimit', 'setAmbientCredentials', 'execve', 'markLocal', 'setWritesInline', 'addressInPage']);
  const out = { ...raw };
  for (const [name, f] of Object.entries(raw)) {
    if (typeof f !== 'function' || local.has(name)) continue;
    (out as Record<string, unknown>)[name] = (...args: unknown[]) => {
      const user = confinedUser.getStore();
      if (!user) return (f as (...a: unknown[]) => unknown)(...args);
      raw.setAmbientCredentials(user.uid, user.gid);
      try {
        return (f as (...a: unknown[]) => unknown)(...args);
      } finally {
        raw.setAmbientCredentials();
      }
    };
  }
  return out;
}

/** The host's flag and mode values, straight from the C headers. */
const { UTIME_NOW: utimeNow, UTIME_OMIT: utimeOmit, ...flags } = native.constants;
export const O: Readonly<Omit<HostConstants, 'UTIME_NOW' | 'UTIME_OMIT'>> = Object.freeze(flags);

/** Pass in a utimens() nsec slot: set that time to now / leave it unchanged. */
export const UTIME_NOW: bigint = BigInt(utimeNow);
export const UTIME_OMIT: bigint = BigInt(utimeOmit);

/** 9P lock types (Tlock/Tgetlock numbering), as taken by lock() and getlock(). */
export const LockType = { RDLCK: 0, WRLCK: 1, UNLCK: 2 } as const;

/** openat(dirfd, name, O_PATH|O_NOFOLLOW) + statx: the walk primitive. A symlink yields an fd to the link itself. */
export const openPath: (dirfd: number, name: Uint8Array, meta?: MetaSource) => Promise<[fd: number, stat: RawStat]> = native.openPath;

/**
 * Successive openPath calls, each relative to the previous fd, in one thread-pool hop.
 * Stops at the first failure (reported in `errno`, not as a rejection; ENOTDIR when
 * asked to go on from a non-directory). ".." is walked like any name: the caller
 * enforces the root boundary. Rejects (EINVAL/ENAMETOOLONG) before walking if any
 * name is invalid. `known` (one fd or -1 per name) names the object the caller holds as each
 * step, if any: a step whose entry still is that object is stat'ed through it, and reported as
 * fd -1, rather than opened again (the caller keeps that fd open for the call).
 */
export function walk(dirfd: number, names: Uint8Array[], meta?: MetaSource, known?: Int32Array): Promise<WalkResult> {
  return native.walk(dirfd, names, meta, known).then(walkResult);
}

/**
 * {@link walk} at once, as {@link fstatNow}: undefined, with nothing left open, when it would go
 * to the thread pool (or found on the way that it must: another filesystem under a step).
 */
export function walkNow(dirfd: number, names: Uint8Array[], meta?: MetaSource, known?: Int32Array): WalkResult | undefined {
  const run = native.walkNow(dirfd, names, meta, known);
  return run && walkResult(run);
}

/** open(path, O_PATH|O_DIRECTORY), following symlinks: the export root is trusted. */
export const openRoot: (path: Uint8Array, meta?: MetaSource) => Promise<[fd: number, stat: RawStat]> = native.openRoot;

/** statx of fd, with metadata `meta` (by-name metadata from `at`, if given). */
export function fstat(fd: number, meta?: MetaSource, at?: MetaAt | null): Promise<RawStat> {
  return at ? native.fstat(fd, meta, at.dir, at.name ?? undefined) : native.fstat(fd, meta);
}

/**
 * {@link fstat} (without `at`) at once, when it runs on the calling thread (see markLocal): the
 * stat, or its error thrown as a SysError; undefined, having done nothing, when it would go to
 * the thread pool. A request answered this way needs no promise's turn.
 */
export const fstatNow: (fd: number, meta?: MetaSource) => RawStat | undefined = native.fstatNow;

/** Open the object behind an (O_PATH) fd via /proc/self/fd/N; O_NOFOLLOW, O_CREAT and O_EXCL are stripped. */
export const reopen: (fd: number, flags: number) => Promise<number> = native.reopen;

/** {@link reopen} at once, as {@link fstatNow}; undefined when it would go to the pool (an O_TRUNC that frees much). */
export const reopenNow: (fd: number, flags: number) => number | undefined = native.reopenNow;

/**
 * openat with O_NOFOLLOW forced. Given uid and gid, the creating calls (openat, mkdirat,
 * mknodat, symlinkat) run as that user (fsuid, fsgid and groups of the worker thread), so the
 * object is born owned by it and the host checks that user's permissions; a server that may not
 * switch users creates as itself.
 */
export const openat: (dirfd: number, name: Uint8Array, flags: number, mode: number, uid?: number, gid?: number) => Promise<number> =
  native.openat;

export const close: (fd: number) => Promise<void> = native.close;
/** Synchronous close for teardown paths; throws a SysError on failure. */
export const closeSync: (fd: number) => void = native.closeSync;

/** One pread(2) into buf[bufOffset, bufOffset+length) (no copy; keep buf alive). Short counts are returned as-is. */
export const pread: (fd: number, buf: Uint8Array, bufOffset: number, length: number, position: bigint) => Promise<number> =
  native.pread;

/**
 * {@link pread} at once, as {@link fstatNow}: when the page cache holds what is asked (or all
 * that is left of the file) and the read is small or ends the file; undefined, with nothing
 * read, otherwise.
 */
export const preadNow: (fd: number, buf: Uint8Array, bufOffset: number, length: number, position: bigint) => number | undefined = native.preadNow;
/**
 * One pwrite(2) from buf[bufOffset, bufOffset+length). Short counts are returned as-is. Given
 * uid and gid, it is written as that user (without the filesystem capabilities), so the host
 * kernel clears setuid and setgid bits as a write by that user does.
 */
export const pwrite: (fd: number, buf: Uint8Array, bufOffset: number, length: number, position: bigint, uid?: number, gid?: number) => Promise<number> =
  native.pwrite;

/** Most buffers one {@link pwritev} takes (the kernel's IOV_MAX). */
export const PWRITEV_MAX = 1024;

/**
 * One pwritev(2) of `bufs` (1 to {@link PWRITEV_MAX}; not copied, and the array must not change
 * until it settles). Short counts are returned as-is; uid and gid as for {@link pwrite}.
 */
export const pwritev: (fd: number, bufs: readonly Uint8Array[], position: bigint, uid?: number, gid?: number) => Promise<number> = native.pwritev;

/**
 * lseek(fd, cookie) then one getdents64 into buf; resolves the bytes filled (0 at the end).
 * Parse with {@link parseDirents}. The seek position is per open file, so calls sharing
 * an fd must not overlap.
 */
export const getdents: (fd: number, cookie: bigint, buf: Uint8Array) => Promise<number> = native.getdents;

/** How {@link readdir9p} turns a host entry into a 9P one: a directory's rules, from its model and the qid mapping. */
export interface DirentRules {
  /** Host d_type (0..15) to the guest's. */
  typeMap: Uint8Array;
  /** qid.path = pathPrefix | d_ino, for d_ino <= maxIno; a larger one stops the call (`more`). */
  pathPrefix: bigint;
  maxIno: bigint;
  /** qid.path of the entry "..", if not 0n (the export root's own, which is the root). */
  dotdotPath: bigint;
  /** Names never listed, each followed by a NUL. */
  reserved?: Uint8Array;
}

/**
 * lseek(fd, cookie), then getdents64 until the directory ends or the next entry does not fit,
 * each entry written as a 9P2000.L dirent (qid, offset, type, name) into frame[offset, offset +
 * limit). Resolves the bytes written, the cookie to resume from (the last entry written or
 * skipped), and `more`: true if it stopped at an entry whose qid path `rules` cannot express.
 */
export function readdir9p(fd: number, cookie: bigint, frame: Uint8Array, offset: number, limit: number, rules: DirentRules): Promise<[bytes: number, resume: bigint, more: boolean]> {
  return native.readdir9p(fd, cookie, frame, offset, limit, rules.typeMap, rules.pathPrefix, rules.maxIno, rules.dotdotPath, rules.reserved);
}

/**
 * {@link readdir9p} at once, as {@link fstatNow}: when the directory is small enough to list on
 * the event loop (the addon's rule); undefined, with nothing written, otherwise.
 */
export function readdir9pNow(fd: number, cookie: bigint, frame: Uint8Array, offset: number, limit: number, rules: DirentRules): [bytes: number, resume: bigint, more: boolean] | undefined {
  return native.readdir9pNow(fd, cookie, frame, offset, limit, rules.typeMap, rules.pathPrefix, rules.maxIno, rules.dotdotPath, rules.reserved);
}

export const mkdirat: (dirfd: number, name: Uint8Array, mode: number, uid?: number, gid?: number) => Promise<void> = native.mkdirat;
export const mknodat: (dirfd: number, name: Uint8Array, mode: number, dev: bigint, uid?: number, gid?: number) => Promise<void> =
  native.mknodat;
export const symlinkat: (target: Uint8Array, dirfd: number, name: Uint8Array, uid?: number, gid?: number) => Promise<void> =
  native.symlinkat;
/** Target of the symlink an O_PATH fd refers to. */
export const readlink: (fd: number) => Promise<Buffer> = native.readlink;
/** Hard-link the object behind fd as newdirfd/newname (via the proc magic link, no privilege needed). */
export const linkat: (fd: number, newdirfd: number, newname: Uint8Array) => Promise<void> = native.linkat;
/** renameat2; flags e.g. O.RENAME_NOREPLACE, O.RENAME_EXCHANGE. */
export const renameat: (
  olddirfd: number,
  oldname: Uint8Array,
  newdirfd: number,
  newname: Uint8Array,
  flags: number,
) => Promise<void> = native.renameat;
/** flags 0 or O.AT_REMOVEDIR. */
export const unlinkat: (dirfd: number, name: Uint8Array, flags: number) => Promise<void> = native.unlinkat;

/** Works on O_PATH fds and symlinks; -1 (or 0xFFFFFFFF) leaves that id unchanged. */
export const fchown: (fd: number, uid: number, gid: number) => Promise<void> = native.fchown;
/** chmod through the proc magic link, so O_PATH fds work. */
export const fchmod: (fd: number, mode: number) => Promise<void> = native.fchmod;
/** utimensat through the proc magic link; pass UTIME_NOW / UTIME_OMIT in an nsec slot. */
export const utimens: (
  fd: number,
  atimeSec: bigint,
  atimeNsec: bigint,
  mtimeSec: bigint,
  mtimeNsec: bigint,
) => Promise<void> = native.utimens;
/** ftruncate(fd) if isOpen (needs a writable fd), else truncate() through the proc magic link. */
export const truncate: (fd: number, size: bigint, isOpen: boolean) => Promise<void> = native.truncate;
export const fsync: (fd: number, datasync: boolean) => Promise<void> = native.fsync;
/** See {@link StatfsIndex}. */
export const fstatfs: (fd: number) => Promise<BigUint64Array> = native.fstatfs;

export const getxattr: (fd: number, name: Uint8Array) => Promise<Buffer> = native.getxattr;
/** The raw list: names each followed by a NUL. */
export const listxattr: (fd: number) => Promise<Buffer> = native.listxattr;
/** flags: 0, O.XATTR_CREATE or O.XATTR_REPLACE. */
export const setxattr: (fd: number, name: Uint8Array, value: Uint8Array, flags: number) => Promise<void> =
  native.setxattr;
export const removexattr: (fd: number, name: Uint8Array) => Promise<void> = native.removexattr;

/**
 * Non-blocking OFD lock (F_OFD_SETLK) on an open (not O_PATH) fd; type in 9P numbering
 * ({@link LockType}), length 0 = to EOF. True if granted, false on conflict.
 */
export const lock: (fd: number, type: number, start: bigint, length: bigint) => Promise<boolean> = native.lock;
/** F_OFD_GETLK: the first conflicting lock, or type UNLCK (2) if none. */
export const getlock: (fd: number, type: number, start: bigint, length: bigint) => Promise<LockInfo> = native.getlock;

/**
 * Lift the process's soft descriptor limit to its hard limit and return the soft limit now
 * (-1: unlimited). Each fid holds a descriptor, so this bounds how many files clients can hold.
 */
export const raiseFdLimit: () => number = native.raiseFdLimit;

/**
 * Let calls on `fd` (a directory of a local filesystem, as the caller decides) and on every
 * descriptor the addon opens from it on the same filesystem run on the calling thread: metadata
 * calls, and reads the page cache can answer (RWF_NOWAIT), and small writes while
 * {@link setWritesInline} allows. Other writes, fsync, truncation, and whatever reaches another
 * filesystem still run on the pool.
 */
export const markLocal: (fd: number) => void = native.markLocal;

/**
 * Whether small writes on descriptors marked local may run on the calling thread, as cached reads
 * do (off at start): a pwrite or pwritev of at most 128 KiB to a regular file opened without
 * O_SYNC, O_DSYNC or O_DIRECT, none of whose partly covered pages inside the file is missing
 * from the page cache (cachestat), while no truncation runs in the pool. The caller decides when
 * the kernel would not throttle such a write (dirty-pages.ts).
 */
export const setWritesInline: (yes: boolean) => void = native.setWritesInline;

/**
 * Where the first byte of `bytes` lies within its memory page (0-4095). On AMD Zen the kernel's
 * copy into memory 1 to 31 bytes past its source within a page runs about five times slower (a
 * 1 MiB pread from the page cache here: 2.2 against 12 GB/s), so frames that receive file data
 * are placed with it (server/frame-pool.ts).
 */
export const addressInPage: (bytes: Uint8Array) => number = native.addressInPage;

/** Entries in /proc/self/fd, synchronously (leak checks in tests). */
export const openFdCount: () => number = native.openFdCount;

/**
 * Walk linux_dirent64 records in buf[0, length): d_ino u64, d_off s64, d_reclen u16,
 * d_type u8, NUL-terminated name. `name` is a view into buf (no copy, no NUL), valid
 * until buf is reused. Return false from visit to stop early.
 */
export function parseDirents(
  buf: Uint8Array,
  length: number,
  visit: (ino: bigint, off: bigint, type: number, name: Buffer) => boolean | void,
): void {
  const view = new DataView(buf.buffer, buf.byteOffset, length);
  for (let p = 0; p + 19 <= length; ) {
    const reclen = view.getUint16(p + 16, true);
    if (reclen < 20 || p + reclen > length) throw new RangeError(`corrupt dirent record at ${p}`);
    const nameEnd = buf.indexOf(0, p + 19);
    const end = nameEnd < 0 || nameEnd > p + reclen ? p + reclen : nameEnd;
    const name = Buffer.from(buf.buffer, buf.byteOffset + p + 19, end - (p + 19));
    if (visit(view.getBigUint64(p, true), view.getBigInt64(p + 8, true), view.getUint8(p + 18), name) === false) return;
    p += reclen;
  }
}

/** Replace this process with `path` (same pid and descriptors); returns only by throwing. */
export const execve: (path: string, argv: string[], env: string[]) => never = native.execve;
