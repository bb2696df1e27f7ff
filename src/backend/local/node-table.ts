import { readFileSync } from 'node:fs';
import { Errno, P9Error, toErrno } from '../../protocol/errno.js';
import type { Qid } from '../../protocol/qid.js';
import { birthOf, LocalNode } from './local-node.js';
import { NodePlaces } from './node-places.js';
import { ObjectMap } from './object-map.js';
import * as sys from './sys.js';
import { StatIndex as S, type RawStat } from './sys.js';

/** What the guest sees of an object, as of a lookup. */
export interface NodeView {
  readonly qid: Qid;
  /** File type bits (S_IFMT) in the guest's view. */
  readonly guestFormat: number;
}

/**
 * Every live node, one per host object (dev, ino) however many fids and walks name it, and the
 * O_PATH descriptors they hold, kept within a budget. A lookup that lands on a live object closes
 * the descriptor it opened and shares the node. Past the budget, the least recently used nodes
 * that no request is using give their descriptor back (QEMU's v9fs_reclaim_fd); one is reopened on
 * next use from its directory's node and its name (O_PATH|O_NOFOLLOW, relative to that
 * directory's descriptor, itself reopened if need be) and must be the same object, else ESTALE.
 * Nodes whose name is not known (the root, reached by "..", unlinked while held) are never
 * reclaimed; nodes in use may take the count past the budget until their requests finish.
 */
export class NodeTable {
  readonly places = new NodePlaces((node) => this.reconsider(node));
  private readonly live = new ObjectMap<LocalNode>();
  /** Reclaimable nodes holding a descriptor no request is using, least recently used first. */
  private readonly idle = new Set<LocalNode>();
  /** O_PATH descriptors held by nodes now. */
  private held = 0;
  /** Descriptors that calls in progress may open (a walk's steps, a reopen), counted against the budget. */
  private reserved = 0;
  /** Calls that open descriptors running now, and those waiting for one to finish. */
  private opening = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    /** How many descriptors nodes may hold (at least 1). */
    readonly budget: number,
  ) {
    if (!(Number.isInteger(budget) && budget >= 1)) throw new RangeError('the descriptor budget must be a whole number of at least 1');
  }

  /** Descriptors held by nodes now (for tests and stats). */
  get descriptors(): number {
    return this.held;
  }

  /**
   * A live node a walk found still at its entry (see sys.walk's `known`): it shows the view of
   * this lookup, counts as just used, and the caller gets one reference.
   */
  reached(node: LocalNode, view: NodeView): LocalNode {
    node.qid = view.qid;
    node.guestFormat = view.guestFormat;
    return node.retain();
  }

  /**
   * The node for the object a lookup has just opened as `fd` with stat `st`: the live one, which
   * takes `fd` over if it had given its own back (else `fd` is closed), or a new one. The caller
   * owns one reference. `view` is the guest's view as of this lookup, which a live node then
   * shows too if `refresh` (not for "..", whose stat has no by-name metadata).
   */
  adopt(fd: number, st: RawStat, view: NodeView, refresh = true): LocalNode {
    const dev = st[S.dev]!;
    const ino = st[S.ino]!;
    const found = this.live.get(dev, ino);
    if (found?.isSameObject(st)) {
      if (refresh) {
        found.qid = view.qid;
        found.guestFormat = view.guestFormat;
      }
      if (found.descriptor < 0 && !found.reopening) this.give(found, fd);
      else sys.closeSync(fd);
      if (this.idle.delete(found)) this.idle.add(found); // used just now
      this.trim();
      return found.retain();
    }
    // Not live, or a reclaimed node whose inode number the filesystem has since given to another
    // object: that node stays for its holders (stale: it cannot be reopened), this one is new.
    const node = new LocalNode(this, fd, dev, ino, LocalNode.formatOf(Number(st[S.mode])), birthOf(st), view.guestFormat, view.qid);
    this.live.set(dev, ino, node);
    this.held++;
    this.reconsider(node);
    this.trim();
    return node;
  }

  /**
   * Run `open`, a call that opens up to `count` descriptors (and keeps none: the caller adopts or
   * closes them), with room made for them in the budget. At most OPENING_AT_ONCE run at once, the
   * rest wait their turn (the thread pool runs no more anyway): however many lookups a client
   * pipelines, descriptors beyond the budget are at most those of a few calls. No slot is held
   * while waiting for another, so waiting never deadlocks.
   */
  async openingUpTo<T>(count: number, open: () => Promise<T>): Promise<T> {
    if (this.opening < OPENING_AT_ONCE) this.opening++;
    else await new Promise<void>((turn) => this.waiting.push(turn)); // the slot is handed over
    this.reserved += count;
    this.trim();
    try {
      return await open();
    } finally {
      this.reserved -= count;
      const next = this.waiting.shift();
      if (next) next();
      else this.opening--;
    }
  }

  /** Close idle descriptors, least recently used first, until `room` more fit in the budget. */
  trim(room = 0): void {
    for (const node of this.idle) {
      if (this.held + this.reserved + room <= this.budget) return;
      this.idle.delete(node);
      sys.closeSync(node.descriptor);
      node.descriptor = -1;
      this.held--;
    }
  }

  /** The node's descriptor, reopened if it was reclaimed, for use until {@link unuse}. */
  async use(node: LocalNode): Promise<number> {
    node.uses++;
    this.idle.delete(node);
    if (node.descriptor >= 0) return node.descriptor;
    try {
      node.reopening ??= this.reopen(node).finally(() => (node.reopening = null));
      return await node.reopening;
    } catch (err) {
      this.unuse(node);
      throw err;
    }
  }

  /**
   * A live node last reached as entry `name` of `dir` whose descriptor is open now, if any, with
   * that descriptor: both held (a reference, and in use as by {@link use}) until {@link letGo}.
   * A walk passes such steps to the addon to check rather than open again.
   */
  holdOpenEntry(dir: LocalNode, name: Uint8Array): { node: LocalNode; fd: number } | undefined {
    const nodes = this.places.nodesAt(dir, name);
    if (!nodes) return undefined;
    for (const node of nodes) {
      if (node.descriptor < 0 || node.reopening) continue;
      node.retain();
      node.uses++;
      this.idle.delete(node);
      return { node, fd: node.descriptor };
    }
    return undefined;
  }

  /** Undo {@link holdOpenEntry}. */
  letGo(node: LocalNode): void {
    this.unuse(node);
    node.release();
  }

  /** As {@link use} when the descriptor is open now; -1, having taken nothing, when it is reclaimed. */
  useNow(node: LocalNode): number {
    if (node.descriptor < 0) return -1;
    node.uses++;
    this.idle.delete(node);
    return node.descriptor;
  }

  unuse(node: LocalNode): void {
    node.uses--;
    this.reconsider(node);
    this.trim();
  }

  /** The node is freed: it leaves the table and closes its descriptor. */
  forget(node: LocalNode): void {
    this.places.forget(node);
    if (this.live.get(node.dev, node.ino) === node) this.live.delete(node.dev, node.ino);
    this.idle.delete(node);
    if (node.descriptor >= 0) {
      sys.closeSync(node.descriptor);
      node.descriptor = -1;
      this.held--;
    }
  }

  /**
   * Reopen a reclaimed node: through one of its open files if it has any (that is the object
   * whatever its names became), else from its entry, checked to be the same object. A rename
   * through the server that moved the entry meanwhile is followed.
   */
  private async reopen(node: LocalNode): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const open = node.openFiles.values().next().value;
      if (open) {
        open.retain();
        try {
          return this.give(node, await this.openingUpTo(1, () => sys.reopen(open.fd, sys.O.O_PATH)));
        } finally {
          open.release();
        }
      }
      const p = node.place;
      if (p.kind !== 'entry') throw new P9Error(Errno.ESTALE, 'the object is no longer reachable by a known name');
      try {
        const [fd, st] = await p.parent.withFd((dir) => this.openingUpTo(1, () => sys.openPath(dir, p.name)));
        if (!node.isSameObject(st)) {
          sys.closeSync(fd);
          throw new P9Error(Errno.ESTALE, 'another object is now at this name (changed behind the server\'s back)');
        }
        return this.give(node, fd);
      } catch (err) {
        if (node.place !== p && attempt < 3) continue;
        const errno = toErrno(err);
        if (errno === Errno.ENOENT || errno === Errno.ENOTDIR) throw new P9Error(Errno.ESTALE, 'the object is gone from its name (changed behind the server\'s back)');
        throw err;
      }
    }
  }

  private give(node: LocalNode, fd: number): number {
    node.descriptor = fd;
    this.held++;
    this.reconsider(node);
    return fd;
  }

  /** Keep the idle list true to the node's state; a node becoming idle is the most recently used. */
  private reconsider(node: LocalNode): void {
    const reclaimable = node.descriptor >= 0 && node.uses === 0 && node.place.kind === 'entry' && !node.released;
    if (!reclaimable) this.idle.delete(node);
    else if (!this.idle.has(node)) this.idle.add(node);
  }
}

/** Calls opening descriptors at once: the CLI's thread pool size. */
const OPENING_AT_ONCE = 16;


/**
 * The default budget: half the process's soft descriptor limit, at most all but 256 of it (never
 * under 16), leaving the rest to open files, connections, and the descriptors that requests in
 * progress open for a moment (a walk's steps, a node being reopened).
 */
export function defaultDescriptorBudget(): number {
  const limit = softDescriptorLimit();
  return limit === null ? 1 << 20 : Math.max(16, Math.min(Math.floor(limit / 2), limit - 256));
}

/** RLIMIT_NOFILE's soft value as /proc/self/limits states it; null if unlimited. */
function softDescriptorLimit(): number | null {
  const m = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
  if (!m || m[1] === 'unlimited') return null;
  return Number(m[1]);
}
