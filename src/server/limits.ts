import { MIN_MSIZE } from '../protocol/constants.js';

/** Every limit the server enforces, by name, with its default. */
export interface Limits {
  /** Largest msize the server agrees to; the kernel's own cap on tcp/unix/fd is 1 MiB. */
  maxMsize: number;
  /** Fids one connection may hold. */
  maxFidsPerConnection: number;
  /** Requests one connection may have in progress; beyond it the server stops reading (backpressure), nothing is refused. */
  maxRequestsInFlight: number;
  /** Bytes of xattr values one connection's fids may hold between Txattrwalk/Txattrcreate and Tclunk (ENOSPC beyond). */
  maxXattrBytesPerConnection: number;
  /** Blocking lock requests one connection may have waiting (ENOLCK beyond). */
  maxLockWaitersPerConnection: number;
  /** Blocking lock requests waiting over all connections (ENOLCK beyond). */
  maxLockWaiters: number;
}

export const defaultLimits: Limits = {
  maxMsize: 1 << 20,
  maxFidsPerConnection: 1 << 17,
  maxRequestsInFlight: 256,
  maxXattrBytesPerConnection: 8 << 20,
  maxLockWaitersPerConnection: 1024,
  maxLockWaiters: 8192,
};

export function checkLimits(l: Limits): void {
  if (!Number.isInteger(l.maxMsize) || l.maxMsize < MIN_MSIZE || l.maxMsize > 0xffffffff)
    throw new RangeError(`msize must be an integer of at least ${MIN_MSIZE}`);
  if (!(l.maxFidsPerConnection >= 1)) throw new RangeError('maxFidsPerConnection must be at least 1');
  if (!(l.maxRequestsInFlight >= 1)) throw new RangeError('maxRequestsInFlight must be at least 1');
  if (!(l.maxXattrBytesPerConnection >= 0)) throw new RangeError('maxXattrBytesPerConnection must not be negative');
  if (!(l.maxLockWaitersPerConnection >= 0)) throw new RangeError('maxLockWaitersPerConnection must not be negative');
  if (!(l.maxLockWaiters >= 0)) throw new RangeError('maxLockWaiters must not be negative');
}
