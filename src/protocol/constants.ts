// Numbers fixed by the 9P2000.L protocol and the Linux client (see shared/reference).

export const VERSION_9P2000L = '9P2000.L';
export const VERSION_UNKNOWN = 'unknown';

export const NOTAG = 0xffff;
export const NOFID = 0xffffffff;
/** n_uname when the client has none (legacy attach). */
export const NONUNAME = 0xffffffff;

/** size[4] type[1] tag[2] */
export const HEADER_SIZE = 7;
/** The client's P9_IOHDRSZ: Tread/Twrite/Treaddir payloads are at most msize - 24. */
export const IOHDRSZ = 24;
/** Rread/Rreaddir header: size[4] type[1] tag[2] count[4]. */
export const RREAD_HEADER_SIZE = 11;
export const MIN_MSIZE = 4096;
export const MAX_WALK_ELEMENTS = 16;

export const QidType = {
  DIR: 0x80,
  APPEND: 0x40,
  EXCL: 0x20,
  MOUNT: 0x10,
  AUTH: 0x08,
  TMP: 0x04,
  SYMLINK: 0x02,
  FILE: 0x00,
} as const;

/** Tgetattr request_mask / Rgetattr valid bits. */
export const GetattrMask = {
  MODE: 0x1n,
  NLINK: 0x2n,
  UID: 0x4n,
  GID: 0x8n,
  RDEV: 0x10n,
  ATIME: 0x20n,
  MTIME: 0x40n,
  CTIME: 0x80n,
  INO: 0x100n,
  SIZE: 0x200n,
  BLOCKS: 0x400n,
  BTIME: 0x800n,
  GEN: 0x1000n,
  DATA_VERSION: 0x2000n,
  BASIC: 0x7ffn,
  ALL: 0x3fffn,
} as const;

/** Tsetattr valid bits. ATIME/MTIME without their *_SET bit mean "now". */
export const SetattrValid = {
  MODE: 0x1,
  UID: 0x2,
  GID: 0x4,
  SIZE: 0x8,
  ATIME: 0x10,
  MTIME: 0x20,
  CTIME: 0x40,
  ATIME_SET: 0x80,
  MTIME_SET: 0x100,
} as const;

/** Tlopen/Tlcreate flags: Linux x86 O_* numbering on the wire, whatever the host. */
export const LinuxOpenFlag = {
  ACCMODE: 0o3,
  RDONLY: 0o0,
  WRONLY: 0o1,
  RDWR: 0o2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  FASYNC: 0o20000,
  DIRECT: 0o40000,
  LARGEFILE: 0o100000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  SYNC: 0o4000000,
} as const;

export const LockType = { RDLCK: 0, WRLCK: 1, UNLCK: 2 } as const;
export const LockFlag = { BLOCK: 1, RECLAIM: 2 } as const;
export const LockStatus = { SUCCESS: 0, BLOCKED: 1, ERROR: 2, GRACE: 3 } as const;

export const XattrFlag = { CREATE: 1, REPLACE: 2 } as const;
export const XATTR_SIZE_MAX = 65536;

export const AT_REMOVEDIR = 0x200;

/** d_type values in Rreaddir entries. */
export const DirentType = { UNKNOWN: 0, FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;
