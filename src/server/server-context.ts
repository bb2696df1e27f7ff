import type { Logger } from 'pino';
import type { Backend } from '../backend/backend.js';
import type { ByteBudget } from './byte-budget.js';
import type { ExportPolicy } from './export-policy.js';
import type { FramePool } from './frame-pool.js';
import type { HostPrivilegeGate } from './host-privilege.js';
import type { IdentityPolicy } from './identity-policy.js';
import type { Limits } from './limits.js';
import type { LockWaiterCount } from './lock-waiters.js';
import type { ServerStats } from './stats.js';

/** What every session of a server shares. */
export interface ServerContext {
  backend: Backend;
  policy: ExportPolicy;
  /** Device nodes, setuid/setgid files and security.* and trusted.* attributes: refused unless allowed. */
  hostPrivilege: HostPrivilegeGate;
  /** Who may attach and with which host ids (identity.ts applies it). */
  identity: IdentityPolicy;
  limits: Limits;
  /** xattr values held across every connection (each connection's budget draws on it). */
  xattrBudget: ByteBudget;
  /** Blocking lock requests waiting on every connection, against limits.maxLockWaiters. */
  lockWaiters: LockWaiterCount;
  stats: ServerStats;
  /** Large reply frames, reused once written (see frame-pool.ts). */
  frames: FramePool;
  log: Logger;
  /** One line per request and reply when tracing (--debug), else undefined. */
  trace: ((connection: number, line: string) => void) | undefined;
  /** Users by name, for attaches that carry no numeric uid. */
  uidOf(uname: string): number;
}
