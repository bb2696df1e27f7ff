import { MIN_MSIZE } from '../protocol/constants.js';

/** Every limit the server enforces, by name, with its default. */
export interface Limits {
  /** Largest msize the server agrees to; the kernel's own cap on tcp/unix/fd is 1 MiB. */
  maxMsize: number;
  /** Fids one connection may hold. */
  maxFidsPerConnection: number;
  /** Requests one connection may have in progress; beyond it the server stops reading (backpressure), nothing is refused. */
  maxRequestsInFlight: number;
  /** Reply bytes queued on one connection (its peer not reading them) beyond which the server stops reading it until they drain. */
  maxQueuedReplyBytes: number;
  /** Bytes of xattr values one connection's fids may hold between Txattrwalk/Txattrcreate and Tclunk (ENOSPC beyond). */
  maxXattrBytesPerConnection: number;
  /** The same, across every connection together (ENOSPC beyond). */
  maxXattrBytes: number;
  /** Connections served at once; the listener closes any beyond (stdio is always one). */
  maxConnections: number;
  /** A connection that has not agreed a version this long after connecting is closed (0: never). */
  handshakeTimeoutMs: number;
  /** A connection whose partly received frame gets no further byte for this long is closed. */
  frameTimeoutMs: number;
  /** Blocking lock requests one connection may have waiting (ENOLCK beyond). */
  maxLockWaitersPerConnection: number;
  /** Blocking lock requests waiting over all connections (ENOLCK beyond). */
  maxLockWaiters: number;
}

export const defaultLimits: Limits = {
  maxMsize: 1 << 20,
  maxFidsPerConnection: 1 << 17,
  maxRequestsInFlight: 256,
  maxQueuedReplyBytes: 2 << 20,
  maxXattrBytesPerConnection: 8 << 20,
  maxXattrBytes: 64 << 20,
  maxConnections: 64,
  // Off: QEMU's guestfwd connects when QEMU starts, and its guest may mount minutes later.
  handshakeTimeoutMs: 0,
  frameTimeoutMs: 120_000,
  maxLockWaitersPerConnection: 1024,
  maxLockWaiters: 8192,
};

/** Below this the output's own buffering (its high-water mark) decides, and 'drain' may never come. */
export const MIN_QUEUED_REPLY_BYTES = 64 << 10;

export function checkLimits(l: Limits): void {
  if (!Number.isInteger(l.maxMsize) || l.maxMsize < MIN_MSIZE || l.maxMsize > 0xffffffff)
    throw new RangeError(`msize must be an integer of at least ${MIN_MSIZE}`);
  if (!(l.maxFidsPerConnection >= 1)) throw new RangeError('maxFidsPerConnection must be at least 1');
  if (!(l.maxRequestsInFlight >= 1)) throw new RangeError('maxRequestsInFlight must be at least 1');
  if (!(l.maxQueuedReplyBytes >= MIN_QUEUED_REPLY_BYTES)) throw new RangeError(`maxQueuedReplyBytes must be at least ${MIN_QUEUED_REPLY_BYTES}`);
  if (!(l.maxXattrBytesPerConnection >= 0)) throw new RangeError('maxXattrBytesPerConnection must not be negative');
  if (!(l.maxXattrBytes >= 0)) throw new RangeError('maxXattrBytes must not be negative');
  if (!(l.maxConnections >= 1)) throw new RangeError('maxConnections must be at least 1');
  if (!(l.handshakeTimeoutMs >= 0)) throw new RangeError('handshakeTimeoutMs must not be negative');
  if (!(l.frameTimeoutMs > 0)) throw new RangeError('frameTimeoutMs must be positive');
  if (!(l.maxLockWaitersPerConnection >= 0)) throw new RangeError('maxLockWaitersPerConnection must not be negative');
  if (!(l.maxLockWaiters >= 0)) throw new RangeError('maxLockWaiters must not be negative');
}
