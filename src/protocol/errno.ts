// Linux errno values as they travel in Rlerror. The wire always carries Linux numbers, whatever the
// host; the server only ever runs on Linux, so host errno and wire errno coincide.
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EPROTO: 71,
  EBADMSG: 74,
  EOVERFLOW: 75,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  ESTALE: 116,
  EDQUOT: 122,
} as const;

export type ErrnoName = keyof typeof Errno;

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

export function errnoName(errno: number): string {
  return names.get(errno) ?? `errno ${errno}`;
}

/**
 * An error that carries the errno the client will see. Everything the server throws on purpose is
 * one. It has no stack trace: it is an answer, not a fault (ENOENT is a lookup's everyday reply),
 * and capturing the stack cost 3-5 µs, about what the rest of a request costs.
 */
export class P9Error extends Error {
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ?? errnoName(errno));
    Error.stackTraceLimit = limit;
    this.name = 'P9Error';
  }
}

/** Turn anything thrown below the server into a valid Rlerror code: never 0, never above 4095. */
export function toErrno(err: unknown): number {
  if (err instanceof P9Error) return validErrno(err.errno);
  const e = err as { errno?: unknown; code?: unknown };
  if (typeof e?.errno === 'number') return validErrno(Math.abs(e.errno));
  if (typeof e?.code === 'string' && e.code in Errno) return Errno[e.code as ErrnoName];
  return Errno.EIO;
}

function validErrno(n: number): number {
  return Number.isInteger(n) && n > 0 && n < 4096 ? n : Errno.EIO;
}
