import { randomBytes } from 'node:crypto';
import { readlink as readlinkPath } from 'node:fs/promises';
import type { Attr, Backend, Credentials, LockRange, Node, OpenFile, SetattrRequest, Statfs, WalkResult } from '../backend.js';
import { AT_REMOVEDIR, DirentType, LinuxOpenFlag, LockType, QidType, SetattrValid, XATTR_SIZE_MAX, XattrFlag } from '../../protocol/constants.js';
import type { DirentPacker } from '../../protocol/dirent.js';
import { Errno, P9Error, toErrno } from '../../protocol/errno.js';
import type { Qid } from '../../protocol/qid.js';
import { BufferPool } from './buffer-pool.js';
import { LocalNode, LocalOpenFile } from './local-node.js';
import { LockWaits } from './lock-waits.js';
import { checkComponent, checkExistingName, checkNewName, isDot, isDotDot } from './names.js';
import { defaultDescriptorBudget, NodeTable, type NodeView } from './node-table.js';
import { isWriteAccess } from '../../protocol/open-flags.js';
import { hostOpenFlags } from './open-flags.js';
import { dirtyPages, openReadingFiles } from './dirty-pages.js';
import { localFilesystem } from './local-filesystems.js';
import { QidMapper, type Multidevs } from './qid-mapper.js';
import type { ModelTarget, SecurityModel } from './security-model.js';
import * as sys from './sys.js';
import { StatIndex as S, type RawStat } from './sys.js';

const S_IFMT = 0o170000;

export interface LocalBackendOptions {
  /** The exported directory. */
  root: string;
  model: SecurityModel;
  /** Other filesystems mounted inside the export: remap (default), forbid or warn, as QEMU's multidevs. */
  multidevs?: Multidevs;
  /** Told once for each other filesystem met under `warn`. */
  onMultidevWarning?: (dev: bigint) => void;
  /**
   * O_PATH descriptors the looked-up objects may hold together; past it idle ones are reclaimed
   * and reopened by name on next use. Default: half the process's soft RLIMIT_NOFILE.
   */
  maxDescriptors?: number;
  /**
   * Make cheap metadata calls on the event loop rather than the thread pool (see sys.markLocal).
   * Default: when the export root is on a local filesystem ({@link localFilesystem}); false
   * keeps every call on the pool.
   */
  inlineMetadata?: boolean;
}

/**
 * The host filesystem below one directory. Every object is reached by walking one component at a
 * time from the export root's descriptor with O_NOFOLLOW, and every operation afterwards goes
 * through the object's own descriptor, so no symlink is ever followed on the host and a rename
 * cannot redirect an operation elsewhere. Nothing outside the export root is reachable.
 */
export class LocalBackend implements Backend {
  private readonly rootNode: LocalNode;
  /**
   * getdents buffers, shared by every directory rather than kept per open one. A Treaddir larger
   * than one takes several getdents calls; each is a thread-pool hop, cheap beside the entries.
   */
  private readonly direntBuffers = new BufferPool(64 << 10, 16);
  /** Blocking lock requests, asleep until this server releases a lock on their inode. */
  private readonly lockWaits = new LockWaits();
  /** The model's part of how the addon lists a directory (readdir9p); the qid paths are per directory. */
  private readonly direntRules: Pick<sys.DirentRules, 'typeMap' | 'reserved'>;

  private constructor(
    /** Every live node, one per object, and the descriptors they hold. */
    private readonly table: NodeTable,
    rootFd: number,
    rootStat: RawStat,
    /** The root's path as the kernel names it, to locate objects for legacy Tremove/Trename. */
    private readonly rootPath: Buffer,
    private readonly qids: QidMapper,
    private readonly model: SecurityModel,
  ) {
    this.rootNode = table.adopt(rootFd, rootStat, this.viewOf(rootStat));
    this.places.setRoot(this.rootNode);
    const reserved = model.reservedNames.map((n) => Buffer.concat([n, Buffer.of(0)]));
    this.direntRules = {
      typeMap: Uint8Array.from({ length: 16 }, (_, t) => model.direntType(t)),
      reserved: reserved.length > 0 ? Buffer.concat(reserved) : undefined,
    };
  }

  static async open(options: LocalBackendOptions): Promise<LocalBackend> {
    // Modes arrive from the client with its umask already applied; the server's own must not
    // strip more (process-wide, which is why a server process serves with umask 0).
    process.umask(0);
    const model = options.model;
    const table = new NodeTable(options.maxDescriptors ?? defaultDescriptorBudget());
    const [fd, stat] = await sys.openRoot(Buffer.from(options.root), model.meta);
    const fsType = Number((await sys.fstatfs(fd))[sys.StatfsIndex.type]! & 0xffffffffn);
    if (options.inlineMetadata ?? localFilesystem(fsType) !== null) sys.markLocal(fd);
    openReadingFiles();
    const qids = new QidMapper(stat[S.dev]!, options.multidevs, options.onMultidevWarning);
    const rootPath = await readlinkPath(procPath(fd), { encoding: 'buffer' });
    return new LocalBackend(table, fd, stat, rootPath, qids, model);
  }

  /** Where each node was last reached: to reopen it, and where mapped-file finds its metadata. */
  private get places() {
    return this.table.places;
  }

  /** Descriptors the looked-up objects hold now (tests watch it stay within the budget). */
  get heldDescriptors(): number {
    return this.table.descriptors;
  }

  async close(): Promise<void> {
    this.rootNode.release();
  }

  /** The models that act with the guest's host ids are the ones that put its modes and types on the host. */
  get actsOnHost(): boolean {
    return this.model.hostIds;
  }

  confine<T>(cred: Credentials, fn: () => T | Promise<T>): T | Promise<T> {
    return this.model.hostIds ? sys.runConfined(cred, fn) : fn();
  }

  async attach(_cred: Credentials, aname: string): Promise<Node> {
    if (aname !== '' && aname !== '/' && aname !== this.rootPath.toString()) {
      throw new P9Error(Errno.ENOENT, `no export named ${JSON.stringify(aname)}`);
    }
    return this.rootNode.retain();
  }

  async walk(from: Node, names: readonly Buffer[]): Promise<WalkResult> {
    let cur = local(from).retain();
    const qids: Qid[] = [];
    try {
      let i = 0;
      while (i < names.length) {
        if (isDotDot(names[i]!)) {
          const up = await this.parentOf(cur);
          cur.release();
          cur = up;
          qids.push(cur.qid);
          i++;
          continue;
        }
        if (this.model.byName && isDot(names[i]!)) {
          // "." is the directory itself, and its metadata is where the directory's is.
          if (!cur.isDirectory) throw new P9Error(Errno.ENOTDIR);
          qids.push(cur.qid);
          i++;
          continue;
        }
        // Walk the run of ordinary names up to the next ".." in one call.
        let j = i;
        while (j < names.length && !isDotDot(names[j]!) && !(this.model.byName && isDot(names[j]!))) this.checkName(names[j++]!);
        const live = this.liveSteps(cur, names.slice(i, j));
        let errno: number;
        try {
          const run = await cur.withFd((fd) => this.table.openingUpTo(j - i - live.length, () => sys.walk(fd, names.slice(i, j), this.model.meta, live.length > 0 ? knownFds(live, j - i) : undefined)));
          [cur, errno] = this.adoptRun(cur, names.slice(i, j), run, live, qids);
        } finally {
          for (const step of live) this.table.letGo(step.node);
        }
        if (errno !== 0) throw new P9Error(errno);
        i = j;
      }
      return { qids, node: cur, error: null };
    } catch (err) {
      cur.release();
      return { qids, node: null, error: err instanceof P9Error ? err : new P9Error(toErrno(err)) };
    }
  }

  /**
   * {@link walk} of ordinary names only (no "..", nor "." under mapped-file), all at once, from a
   * node whose descriptor is open, when the addon can walk on this thread; undefined, having
   * done nothing, otherwise.
   */
  walkNow(from: Node, names: readonly Buffer[]): WalkResult | undefined {
    if (names.some((n) => isDotDot(n) || (this.model.byName && isDot(n)))) return undefined;
    let cur = local(from);
    const qids: Qid[] = [];
    let run: sys.WalkResult | undefined;
    let live: LiveStep[] = [];
    try {
      for (const name of names) this.checkName(name);
      live = this.liveSteps(cur, names);
      run = cur.withFdNow((fd) => {
        this.table.trim(names.length - live.length);
        return sys.walkNow(fd, names as Buffer[], this.model.meta, live.length > 0 ? knownFds(live, names.length) : undefined);
      });
      if (!run) return undefined;
      cur.retain();
      let errno: number;
      [cur, errno] = this.adoptRun(cur, names, run, live, qids);
      if (errno !== 0) {
        cur.release();
        return { qids, node: null, error: new P9Error(errno) };
      }
      return { qids, node: cur, error: null };
    } catch (err) {
      return { qids, node: null, error: err instanceof P9Error ? err : new P9Error(toErrno(err)) };
    } finally {
      for (const step of live) this.table.letGo(step.node);
    }
  }

  /**
   * Take in what the addon walked from `cur` (which it releases): each step's qid onto `qids`,
   * and the nodes. Under --multidevs forbid the walk stops where it would enter another
   * filesystem. Returns the last node reached and the errno the walk stopped with (0 for none).
   */
  private adoptRun(cur: LocalNode, names: readonly Buffer[], run: sys.WalkResult, live: readonly LiveStep[], qids: Qid[]): [LocalNode, number] {
    const barred = run.stats.findIndex((st) => !this.qids.allows(st[S.dev]!));
    if (barred >= 0) {
      for (const fd of run.fds.slice(barred)) if (fd >= 0) sys.close(fd).catch(() => {});
      run = { fds: run.fds.slice(0, barred), stats: run.stats.slice(0, barred), errno: Errno.ENODEV };
    }
    for (const st of run.stats) qids.push(this.qidOf(st));
    return [this.adoptWalk(cur, names, run, live), run.errno];
  }

  /**
   * Turn a walked run into nodes, releasing `from`; resolves the last node (or `from` if none).
   * Every step stays a node (shared with any live one of the same object), held by the next as
   * the directory its entry is in: that is where the next is reopened from, and where mapped-file
   * finds its metadata. An idle intermediate step soon gives its descriptor back.
   */
  private adoptWalk(from: LocalNode, names: readonly Buffer[], run: sys.WalkResult, live: readonly LiveStep[]): LocalNode {
    let cur = from;
    for (let k = 0; k < run.fds.length; k++) {
      const fd = run.fds[k]!;
      const view = this.viewOf(run.stats[k]!);
      const node = fd < 0 ? this.table.reached(live[k]!.node, view) : this.table.adopt(fd, run.stats[k]!, view);
      if (!isDot(names[k]!)) this.places.setEntry(node, cur, names[k]!);
      cur.release();
      cur = node;
    }
    return cur;
  }

  /**
   * The leading steps of a walk that live nodes already hold open, each the entry of the one
   * before (held until the walk is adopted): the addon checks that each entry is still that
   * object through its descriptor instead of opening and closing another. A stat row's
   * `tree/dNN/fNN` then opens one descriptor, not three.
   */
  private liveSteps(from: LocalNode, names: readonly Buffer[]): LiveStep[] {
    const live: LiveStep[] = [];
    let dir = from;
    for (const name of names) {
      const step = this.table.holdOpenEntry(dir, name);
      if (!step) break;
      live.push(step);
      dir = step.node;
    }
    return live;
  }

  /**
   * ".." of the export root is the root itself: the walk never climbs out. The parent is usually
   * live (the node's entry holds it), and keeps its place; one that is not has no known name (so
   * keeps its descriptor, and under mapped-file shows its host stat).
   */
  private async parentOf(node: LocalNode): Promise<LocalNode> {
    if (this.isRoot(node)) return this.rootNode.retain();
    if (!node.isDirectory) throw new P9Error(Errno.ENOTDIR);
    const [fd, st] = await node.withFd((d) => this.table.openingUpTo(1, () => sys.openPath(d, DOTDOT, this.model.meta)));
    if (this.rootNode.isSameObject(st)) {
      sys.closeSync(fd);
      return this.rootNode.retain();
    }
    return this.table.adopt(fd, st, this.viewOf(st), false);
  }

  /** A name from the guest: one component, and never one the model keeps for itself (CVE-2017-7493). */
  private checkName(name: Buffer): void {
    checkComponent(name);
    if (this.model.isReserved(name)) throw new P9Error(Errno.EINVAL, 'name reserved for the server\'s metadata');
  }

  private checkNew(name: Buffer): void {
    checkNewName(name);
    this.checkName(name);
  }

  private checkExisting(name: Buffer): void {
    checkExistingName(name);
    this.checkName(name);
  }

  /** Run fn with the node as the model acts on it, its metadata's directory held meanwhile. */
  private withTarget<T>(node: LocalNode, fn: (t: ModelTarget) => Promise<T>): Promise<T> {
    return node.withFd((fd) => {
      if (!this.model.byName) return fn({ fd, at: null, kept: null });
      const p = node.place;
      switch (p.kind) {
        case 'entry':
          return p.parent.withFd((dir) => fn({ fd, at: { dir, name: p.name }, kept: null }));
        case 'root':
          return fn({ fd, at: { dir: fd, name: null }, kept: null });
        case 'kept':
          return fn({ fd, at: null, kept: p.meta });
        case 'none':
          return fn({ fd, at: null, kept: null });
      }
    });
  }

  private isRoot(node: LocalNode): boolean {
    return node.dev === this.rootNode.dev && node.ino === this.rootNode.ino;
  }

  /** The guest's view of an object from a stat taken with the model's metadata. */
  private viewOf(st: RawStat): NodeView {
    const mode = this.model.view(st).mode;
    return { qid: qidOf(this.qids, st, mode), guestFormat: LocalNode.formatOf(mode) };
  }

  /** A qid from a stat taken with the model's metadata: its type is the guest's. */
  private qidOf(st: RawStat): Qid {
    return qidOf(this.qids, st, this.model.view(st).mode);
  }

  async getattr(node: Node, open: OpenFile | null): Promise<Attr> {
    return this.attrOf(await this.withTarget(local(node), (t) => this.model.stat(t, open ? (open as LocalOpenFile).fd : t.fd)));
  }

  getattrNow(node: Node, open: OpenFile | null): Attr | undefined {
    const st = local(node).withFdNow((fd) => this.model.statNow(open ? (open as LocalOpenFile).fd : fd));
    return st && this.attrOf(st);
  }

  private attrOf(st: RawStat): Attr {
    const view = this.model.view(st);
    return {
      qid: qidOf(this.qids, st, view.mode),
      mode: view.mode,
      uid: view.uid,
      gid: view.gid,
      nlink: view.nlink,
      rdev: view.rdev,
      size: st[S.size]!,
      blksize: st[S.blksize]!,
      blocks: st[S.blocks]!,
      atimeSec: st[S.atimeSec]!,
      atimeNsec: st[S.atimeNsec]!,
      mtimeSec: st[S.mtimeSec]!,
      mtimeNsec: st[S.mtimeNsec]!,
      ctimeSec: st[S.ctimeSec]!,
      ctimeNsec: st[S.ctimeNsec]!,
      btimeSec: st[S.btimeSec]!,
      btimeNsec: st[S.btimeNsec]!,
      hasBtime: st[S.btimeSec] !== 0n || st[S.btimeNsec] !== 0n,
    };
  }

  /** Applied in QEMU's order (mode, times, owner, size) so a combined request behaves the same. */
  async setattr(node: Node, open: OpenFile | null, req: SetattrRequest): Promise<void> {
    const n = local(node);
    const v = req.valid;
    if (v & SetattrValid.MODE) await this.withTarget(n, (t) => this.model.chmod(t, req.mode & 0o7777, n.guestFormat));
    if (v & (SetattrValid.ATIME | SetattrValid.MTIME)) {
      const [aS, aN] = timeArg(v, SetattrValid.ATIME, SetattrValid.ATIME_SET, req.atimeSec, req.atimeNsec);
      const [mS, mN] = timeArg(v, SetattrValid.MTIME, SetattrValid.MTIME_SET, req.mtimeSec, req.mtimeNsec);
      await n.withFd((fd) => sys.utimens(fd, aS, aN, mS, mN));
    }
    if (v & (SetattrValid.UID | SetattrValid.GID)) {
      await this.withTarget(n, (t) => this.model.chown(t, v & SetattrValid.UID ? req.uid : -1, v & SetattrValid.GID ? req.gid : -1));
    } else if (v === SetattrValid.CTIME) {
      // A bare ctime update: chown to the same ids is the one call that only touches ctime.
      await this.withTarget(n, (t) => this.model.chown(t, -1, -1));
    }
    if (v & SetattrValid.SIZE) {
      const o = open as LocalOpenFile | null;
      if (n.isDirectory) throw new P9Error(Errno.EISDIR);
      await (o?.writable ? sys.truncate(o.fd, req.size, true) : n.withFd((fd) => sys.truncate(fd, req.size, false)));
    }
  }

  async open(node: Node, flags: number, cred: Credentials): Promise<OpenFile> {
    const n = local(node);
    if (openable(n, flags) === 'directory') {
      const fd = await n.withFd((pfd) => sys.reopen(pfd, sys.O.O_RDONLY | sys.O.O_DIRECTORY));
      return new LocalOpenFile(fd, n.retain(), false, null);
    }
    const fd = await n.withFd((pfd) => reopenNoatime(pfd, hostOpenFlags(flags)));
    return new LocalOpenFile(fd, n.retain(), isWriteAccess(flags), writerOf(flags, cred));
  }

  openNow(node: Node, flags: number, cred: Credentials): OpenFile | undefined {
    const n = local(node);
    if (openable(n, flags) === 'directory') {
      const fd = n.withFdNow((pfd) => sys.reopenNow(pfd, sys.O.O_RDONLY | sys.O.O_DIRECTORY));
      return fd === undefined ? undefined : new LocalOpenFile(fd, n.retain(), false, null);
    }
    const fd = n.withFdNow((pfd) => reopenNoatimeNow(pfd, hostOpenFlags(flags)));
    return fd === undefined ? undefined : new LocalOpenFile(fd, n.retain(), isWriteAccess(flags), writerOf(flags, cred));
  }

  async create(dir: Node, name: Buffer, flags: number, mode: number, cred: Credentials): Promise<OpenFile> {
    const d = local(dir);
    this.checkNew(name);
    return d.withFd(async (dfd) => {
      let fd: number;
      try {
        fd = await this.model.createFile(dfd, name, hostOpenFlags(flags), mode, cred);
      } catch (err) {
        // O_CREAT without O_EXCL on a name that appeared meanwhile opens it, as open(2) would;
        // through the walk, so the existing object gets the same type checks as Tlopen.
        if (toErrno(err) !== Errno.EEXIST || flags & LinuxOpenFlag.EXCL) throw err;
        const [pfd, st] = await this.table.openingUpTo(1, () => sys.openPath(dfd, name, this.model.meta));
        const node = this.entryNode(pfd, st, d, name);
        try {
          return await this.open(node, flags & ~LinuxOpenFlag.TRUNC, cred);
        } finally {
          node.release();
        }
      }
      try {
        const pfd = await this.table.openingUpTo(1, () => sys.reopen(fd, sys.O.O_PATH));
        const node = this.entryNode(pfd, await sys.fstat(pfd, this.model.meta, { dir: dfd, name }), d, name);
        return new LocalOpenFile(fd, node, isWriteAccess(flags), writerOf(flags, cred));
      } catch (err) {
        sys.closeSync(fd);
        throw err;
      }
    });
  }

  /** The node of entry `name` of `dir`, just opened as `fd`. */
  private entryNode(fd: number, st: RawStat, dir: LocalNode, name: Buffer): LocalNode {
    const node = this.table.adopt(fd, st, this.viewOf(st));
    this.places.setEntry(node, dir, name);
    return node;
  }

  async mkdir(dir: Node, name: Buffer, mode: number, cred: Credentials): Promise<Qid> {
    this.checkNew(name);
    return local(dir).withFd(async (dfd) => {
      await this.model.mkdir(dfd, name, mode, cred);
      return this.qidByName(dfd, name);
    });
  }

  async mknod(dir: Node, name: Buffer, mode: number, major: number, minor: number, cred: Credentials): Promise<Qid> {
    this.checkNew(name);
    const format = mode & S_IFMT;
    const allowed = [sys.O.S_IFREG, sys.O.S_IFIFO, sys.O.S_IFSOCK, sys.O.S_IFCHR, sys.O.S_IFBLK];
    if (!allowed.includes(format)) throw new P9Error(Errno.EINVAL, 'mknod of a directory or symlink');
    return local(dir).withFd(async (dfd) => {
      await this.model.mknod(dfd, name, mode & (S_IFMT | 0o7777), makedev(major, minor), cred);
      return this.qidByName(dfd, name);
    });
  }

  async symlink(dir: Node, name: Buffer, target: Buffer, cred: Credentials): Promise<Qid> {
    this.checkNew(name);
    if (target.includes(0)) throw new P9Error(Errno.EINVAL, 'symlink target contains NUL');
    return local(dir).withFd(async (dfd) => {
      await this.model.symlink(dfd, name, target, cred);
      return this.qidByName(dfd, name);
    });
  }

  /**
   * The qid of an object just created under `name`. The model made it whole (born owned, or its
   * metadata written through its own descriptor), so this only identifies it: a racing swap of
   * the name can at worst report another object's qid, never change anything.
   */
  private async qidByName(dirFd: number, name: Buffer): Promise<Qid> {
    const [fd, st] = await sys.openPath(dirFd, name, this.model.meta);
    await sys.close(fd);
    return this.qidOf(st);
  }

  async link(dir: Node, target: Node, name: Buffer): Promise<void> {
    this.checkNew(name);
    const t = local(target);
    if (t.isDirectory) throw new P9Error(Errno.EPERM, 'hard links to directories are not allowed');
    await this.withTarget(t, (mt) => local(dir).withFd((dfd) => this.model.link(mt, dfd, name)));
  }

  readlink(node: Node): Promise<Buffer> {
    const n = local(node);
    if (n.guestFormat !== sys.O.S_IFLNK) return Promise.reject(new P9Error(Errno.EINVAL, 'not a symlink'));
    return n.withFd((fd) => this.model.readlink(fd, n.format));
  }

  async renameat(oldDir: Node, oldName: Buffer, newDir: Node, newName: Buffer): Promise<void> {
    this.checkExisting(oldName);
    this.checkNew(newName);
    const o = local(oldDir);
    const n = local(newDir);
    await o.withFd((ofd) => n.withFd((nfd) => this.renameEntry({ fd: ofd, dev: o.dev, ino: o.ino }, oldName, n, nfd, newName)));
  }

  async rename(node: Node, newDir: Node, newName: Buffer): Promise<void> {
    this.checkNew(newName);
    const d = local(newDir);
    await this.withEntryAside(local(node), (dir, aside) => d.withFd((nfd) => this.renameEntry(dir, aside, d, nfd, newName)));
  }

  /** Rename through the model; nodes last reached by the old name follow it, those by the name it replaces lose theirs. */
  private async renameEntry(oldDir: HeldDir, oldName: Buffer, newDir: LocalNode, newDirFd: number, newName: Buffer, flags = 0): Promise<void> {
    const same = oldDir.dev === newDir.dev && oldDir.ino === newDir.ino && oldName.equals(newName);
    if (same) return this.model.rename(oldDir.fd, oldName, newDirFd, newName, flags);
    await this.unnaming({ fd: newDirFd, dev: newDir.dev, ino: newDir.ino }, newName, () => this.model.rename(oldDir.fd, oldName, newDirFd, newName, flags));
    this.places.move(oldDir, oldName, newDir, newName);
  }

  async unlinkat(dir: Node, name: Buffer, flags: number): Promise<void> {
    this.checkExisting(name);
    if (flags & ~AT_REMOVEDIR) throw new P9Error(Errno.EINVAL, `unlinkat flags 0x${flags.toString(16)}`);
    const d = local(dir);
    await d.withFd((dfd) => this.unlinkEntry({ fd: dfd, dev: d.dev, ino: d.ino }, name, flags & AT_REMOVEDIR ? sys.O.AT_REMOVEDIR : 0));
  }

  async remove(node: Node): Promise<void> {
    const n = local(node);
    await this.withEntryAside(n, (dir, aside) => this.unlinkEntry(dir, aside, n.isDirectory ? sys.O.AT_REMOVEDIR : 0));
  }

  /**
   * Legacy Tremove and Trename name an object, not a directory entry, and finding its entry then
   * acting on that name is a race: a host process swapping two names in between (RENAME_EXCHANGE)
   * would have the other object removed. So the entry is first moved aside, under a fresh random
   * name in the same directory (RENAME_NOREPLACE, through the model so by-name metadata follows),
   * and `act` runs on it only once the aside name is seen to hold the object; otherwise the entry
   * goes back and the search starts again. Swaps of the names the objects live under cannot reach
   * the aside name; a process that renames that very name could only bring in objects it could
   * have removed itself. If `act` fails, the entry goes back under its name.
   */
  private async withEntryAside(node: LocalNode, act: (dir: HeldDir, aside: Buffer) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let at: { dir: LocalNode; name: Buffer };
      try {
        at = await node.withFd((fd) => this.locate(node, fd));
      } catch (err) {
        // Moved between reading its path and checking it: look again.
        if (toErrno(err) === Errno.ENOENT && attempt < ASIDE_ATTEMPTS) continue;
        throw err;
      }
      const { dir, name } = at;
      try {
        const done = await dir.withFd(async (dirFd) => {
          const held: HeldDir = { fd: dirFd, dev: dir.dev, ino: dir.ino };
          const aside = Buffer.from(`${ASIDE_PREFIX}${randomBytes(8).toString('hex')}`);
          try {
            await this.renameEntry(held, name, dir, dirFd, aside, sys.O.RENAME_NOREPLACE);
          } catch (err) {
            // The name went away between finding and moving it: look again.
            if (toErrno(err) === Errno.ENOENT && attempt < ASIDE_ATTEMPTS) return false;
            throw err;
          }
          if (await this.holds(dirFd, aside, node).catch(() => false)) {
            try {
              await act(held, aside);
            } catch (err) {
              await this.renameEntry(held, aside, dir, dirFd, name, sys.O.RENAME_NOREPLACE).catch(() => {});
              throw err;
            }
            return true;
          }
          await this.renameEntry(held, aside, dir, dirFd, name, sys.O.RENAME_NOREPLACE);
          if (attempt === ASIDE_ATTEMPTS) throw new P9Error(Errno.ENOENT, 'object keeps moving');
          return false;
        });
        if (done) return;
      } finally {
        dir.release();
      }
    }
  }

  /** Whether entry dirFd/name is `node`'s object. */
  private async holds(dirFd: number, name: Buffer, node: LocalNode): Promise<boolean> {
    const [fd, st] = await this.table.openingUpTo(1, () => sys.openPath(dirFd, name));
    await sys.close(fd);
    return st[S.dev] === node.dev && st[S.ino] === node.ino;
  }

  private unlinkEntry(dir: HeldDir, name: Buffer, flags: number): Promise<void> {
    return this.unnaming(dir, name, () => this.model.unlink(dir.fd, name, flags));
  }

  /**
   * Run `takeAway`, which removes entry dir/name (an unlink, or a rename over it), for the nodes
   * last reached by that name: without a name a node cannot be reopened, so each one is given its
   * descriptor back first and keeps it from then on. Under mapped-file each also keeps its
   * metadata in memory, read before the entry (and so its metadata file) goes.
   */
  private async unnaming(dir: HeldDir, name: Buffer, takeAway: () => Promise<void>): Promise<void> {
    const held: { node: LocalNode; fd: number }[] = [];
    for (const node of this.places.at(dir, name)) {
      node.retain();
      try {
        held.push({ node, fd: await this.table.use(node) });
      } catch {
        node.release(); // stale already: it stays unreachable
      }
    }
    try {
      let kept: BigUint64Array | null = null;
      if (this.model.byName && held.length > 0) {
        const st = await sys.fstat(held[0]!.fd, this.model.meta, { dir: dir.fd, name });
        kept = st.slice(S.metaFound, S.metaRdev + 1);
      }
      await takeAway();
      this.places.retire(dir, name, kept);
    } finally {
      for (const { node } of held) {
        this.table.unuse(node);
        node.release();
      }
    }
  }

  /**
   * Where an object currently lives, for the two legacy messages that name an object rather than
   * a directory entry. The kernel's own record of the descriptor's path (kept current across
   * renames) is re-walked from the root without following anything; the caller (withEntryAside)
   * checks that the entry is the object. The directory's node is the caller's to release.
   */
  private async locate(node: LocalNode, fd: number): Promise<{ dir: LocalNode; name: Buffer }> {
    if (this.isRoot(node)) throw new P9Error(Errno.EBUSY, 'the export root cannot be removed or renamed');
    const path = await readlinkPath(procPath(fd), { encoding: 'buffer' });
    const prefix = Buffer.concat([this.rootPath, SLASH]);
    if (!path.subarray(0, prefix.length).equals(prefix) || path.toString('latin1').endsWith(' (deleted)')) {
      throw new P9Error(Errno.ENOENT, 'object is no longer reachable from the export');
    }
    const parts = splitPath(path.subarray(prefix.length));
    const name = parts.pop()!;
    if (parts.length === 0) return { dir: this.rootNode.retain(), name };
    const run = await this.rootNode.withFd((rootFd) => this.table.openingUpTo(parts.length, () => sys.walk(rootFd, parts)));
    for (let k = 0; k < run.fds.length - 1; k++) sys.closeSync(run.fds[k]!);
    if (run.errno !== 0) {
      if (run.fds.length > 0) sys.closeSync(run.fds[run.fds.length - 1]!);
      throw new P9Error(run.errno);
    }
    const st = run.stats[run.stats.length - 1]!;
    // The directory's own node (shared with any fid holding it), so that nodes moved through it
    // follow their entry; its stat has no by-name metadata, so it leaves the guest's view alone.
    return { dir: this.table.adopt(run.fds[run.fds.length - 1]!, st, this.viewOf(st), false), name };
  }

  read(file: OpenFile, offset: bigint, buf: Buffer, bufOffset: number, count: number): Promise<number> {
    return sys.pread((file as LocalOpenFile).fd, buf, bufOffset, count, offset);
  }

  readNow(file: OpenFile, offset: bigint, buf: Buffer, bufOffset: number, count: number): number | undefined {
    return sys.preadNow((file as LocalOpenFile).fd, buf, bufOffset, count, offset);
  }

  async write(file: OpenFile, offset: bigint, pieces: readonly Buffer[]): Promise<number> {
    const f = file as LocalOpenFile;
    if (!f.writable) throw new P9Error(Errno.EBADF, 'file is not open for writing');
    const data = pieces.filter((p) => p.length > 0);
    if (data.length === 0) return 0;
    if (data.length > sys.PWRITEV_MAX) data.splice(0, data.length, Buffer.concat(data));
    const first = f.unwritten;
    f.unwritten = false;
    dirtyPages.poke(data.reduce((n, b) => n + b.length, 0));
    const n = await this.withTarget(f.node, (t) => this.model.write(f.fd, t, f.node.guestFormat, data, offset, f.writer, first));
    // The client retries a zero count forever; say why instead.
    if (n === 0) throw new P9Error(Errno.ENOSPC);
    return n;
  }

  readdir(file: OpenFile, cookie: bigint, out: DirentPacker): Promise<void> {
    const f = file as LocalOpenFile;
    if (!f.node.isDirectory) return Promise.reject(new P9Error(Errno.ENOTDIR));
    f.dirPending++;
    const run = f.dirQueue.then(() => this.list(f, cookie, out));
    const settled = () => void f.dirPending--;
    f.dirQueue = run.then(settled, settled);
    return run;
  }

  /**
   * {@link readdir} at once when no listing of the file is queued and the addon packs it on the
   * event loop: true once `out` holds at least one entry or the directory ended; undefined,
   * with nothing added, otherwise. A listing cut short where the addon's rules stop (an inode
   * number they cannot map) is answered with what it holds: the client asks again from there.
   */
  readdirNow(file: OpenFile, cookie: bigint, out: DirentPacker): boolean | undefined {
    const f = file as LocalOpenFile;
    if (!f.node.isDirectory || f.dirPending > 0) return undefined;
    const rules = this.packingRules(f.node);
    if (!rules) return undefined;
    const r = sys.readdir9pNow(f.fd, cookie, out.buffer, out.position, out.room, rules);
    if (!r) return undefined;
    const [bytes, , more] = r;
    if (more && bytes === 0) {
      // Nothing packed: the listing goes on in JavaScript from the same cookie, through the queue.
      return undefined;
    }
    out.advance(bytes);
    return true;
  }

  /** How the addon packs `dir`'s entries, or null where its qid paths need the mapper (QidMapper.direct). */
  private packingRules(dir: LocalNode): sys.DirentRules | null {
    const direct = this.qids.direct(dir.dev);
    if (!direct) return null;
    return { ...this.direntRules, pathPrefix: direct.prefix, maxIno: direct.maxIno, dotdotPath: this.isRoot(dir) ? this.rootNode.qid.path : 0n };
  }

  /**
   * Resume at the host's own d_off cookie: O(1), never a rescan, stable across modifications.
   * The addon packs the entries; JavaScript takes over only for inode numbers its rules cannot
   * map (see QidMapper.direct).
   */
  private async list(f: LocalOpenFile, cookie: bigint, out: DirentPacker): Promise<void> {
    const rules = this.packingRules(f.node);
    if (rules) {
      const [bytes, resume, more] = await sys.readdir9p(f.fd, cookie, out.buffer, out.position, out.room, rules);
      out.advance(bytes);
      if (!more) return;
      cookie = resume;
    }
    const buf = this.direntBuffers.take();
    try {
      await this.readdirInto(buf.subarray(0, Math.max(4096, Math.min(out.room, buf.length))), f, cookie, out);
    } finally {
      this.direntBuffers.give(buf);
    }
  }

  private async readdirInto(buf: Buffer, f: LocalOpenFile, cookie: bigint, out: DirentPacker): Promise<void> {
    const dir = f.node;
    const atRoot = this.isRoot(dir);
    for (;;) {
      const n = await sys.getdents(f.fd, cookie, buf);
      if (n === 0) return;
      let full = false;
      sys.parseDirents(buf, n, (ino, off, hostType, name) => {
        if (this.model.isReserved(name)) {
          cookie = off;
          return true;
        }
        const path = atRoot && isDotDot(name) ? this.rootNode.qid.path : this.qids.path(dir.dev, ino);
        const type = this.model.direntType(hostType);
        if (!out.add(direntQidType(type), 0, path, off, type, name)) {
          full = true;
          return false;
        }
        cookie = off;
        return true;
      });
      if (full) return;
    }
  }

  fsync(file: OpenFile, datasync: boolean): Promise<void> {
    return sys.fsync((file as LocalOpenFile).fd, datasync);
  }

  async statfs(node: Node): Promise<Statfs> {
    const s = await local(node).withFd((fd) => sys.fstatfs(fd));
    return {
      fsType: Number(s[0]! & 0xffffffffn),
      bsize: Number(s[1]!),
      blocks: s[2]!,
      bfree: s[3]!,
      bavail: s[4]!,
      files: s[5]!,
      ffree: s[6]!,
      fsid: s[7]!,
      namelen: Number(s[8]!),
    };
  }

  /**
   * OFD locks: owned by the open file, so they exclude between fids and connections and vanish
   * on close. An unlock or a downgrade wakes the inode's waiters.
   */
  async lock(file: OpenFile, range: LockRange): Promise<boolean> {
    const f = file as LocalOpenFile;
    const granted = await this.tryLock(f, range);
    if (granted && range.lockType !== LockType.WRLCK) this.lockWaits.changed(f.node.dev, f.node.ino);
    return granted;
  }

  waitLock(file: OpenFile, range: LockRange, signal: AbortSignal): Promise<void> {
    const f = file as LocalOpenFile;
    checkLockType(range.lockType);
    // A waiter only ever gains a lock (a downgrade never waits), so its grant wakes nobody.
    return this.lockWaits.wait(f.node.dev, f.node.ino, f, range, () => this.tryLock(f, range), signal);
  }

  private async tryLock(f: LocalOpenFile, range: LockRange): Promise<boolean> {
    checkLockType(range.lockType);
    const granted = await sys.lock(f.fd, range.lockType, range.start, range.length);
    if (granted && range.lockType !== LockType.UNLCK && !f.onClosed) {
      const { dev, ino } = f.node;
      f.onClosed = () => this.lockWaits.changed(dev, ino);
    }
    return granted;
  }

  async getlock(file: OpenFile, range: LockRange): Promise<LockRange> {
    checkLockType(range.lockType);
    if (range.lockType === LockType.UNLCK) return range;
    const l = await sys.getlock((file as LocalOpenFile).fd, range.lockType, range.start, range.length);
    return { lockType: l.type, start: l.start, length: l.length };
  }

  async xattrGet(node: Node, name: Buffer): Promise<Buffer> {
    const v = await local(node).withFd((fd) => this.model.xattrGet(fd, name));
    if (v.length > XATTR_SIZE_MAX) throw new P9Error(Errno.E2BIG);
    return v;
  }

  async xattrList(node: Node): Promise<Buffer> {
    const list = await local(node).withFd((fd) => this.model.xattrList(fd));
    if (list.length > XATTR_SIZE_MAX) throw new P9Error(Errno.E2BIG);
    return list;
  }

  async xattrSet(node: Node, name: Buffer, value: Buffer, flags: number): Promise<void> {
    if (flags & ~(XattrFlag.CREATE | XattrFlag.REPLACE)) throw new P9Error(Errno.EINVAL, 'xattr flags');
    await local(node).withFd((fd) => this.model.xattrSet(fd, name, value, flags));
  }

  async xattrRemove(node: Node, name: Buffer): Promise<void> {
    await local(node).withFd((fd) => this.model.xattrRemove(fd, name));
  }
}

const DOTDOT = Buffer.from('..');
/** Legacy Tremove/Trename move an entry aside under this prefix and a random suffix before acting. */
const ASIDE_PREFIX = '.virtfs-aside-';
/** Tries before answering ENOENT for an object whose name keeps being swapped. */
const ASIDE_ATTEMPTS = 8;

/** A walk step a live node holds open (see liveSteps). */
interface LiveStep {
  node: LocalNode;
  fd: number;
}

/** sys.walk's `known`: the live steps' descriptors, -1 for the steps after them. */
function knownFds(live: readonly LiveStep[], steps: number): Int32Array {
  const known = new Int32Array(steps).fill(-1);
  live.forEach((s, k) => (known[k] = s.fd));
  return known;
}

/** A directory descriptor held for one operation, with its identity. */
interface HeldDir {
  fd: number;
  dev: bigint;
  ino: bigint;
}
const SLASH = Buffer.from('/');

function local(node: Node): LocalNode {
  return node as LocalNode;
}

function procPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

function splitPath(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      if (i > start) out.push(p.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

/** `mode` gives the qid's type: the guest's, from the security model. */
function qidOf(qids: QidMapper, st: RawStat, mode: number): Qid {
  return qids.qid(st[S.dev]!, st[S.ino]!, mode, st[S.mtimeSec]!, st[S.mtimeNsec]!, st[S.size]!);
}

function direntQidType(type: number): number {
  if (type === DirentType.DIR) return QidType.DIR;
  if (type === DirentType.LNK) return QidType.SYMLINK;
  return QidType.FILE;
}

/** Without ATIME/MTIME leave the time alone; without *_SET the client means "now". */
function timeArg(valid: number, bit: number, setBit: number, sec: bigint, nsec: bigint): [bigint, bigint] {
  if (!(valid & bit)) return [0n, sys.UTIME_OMIT];
  if (!(valid & setBit)) return [0n, sys.UTIME_NOW];
  if (nsec >= 1_000_000_000n) throw new P9Error(Errno.EINVAL, 'nanoseconds out of range');
  return [sec, nsec];
}

/** Who writes through a file opened with `flags`: nobody, or root (whose writes keep setuid bits), is null. */
function writerOf(flags: number, cred: Credentials): Credentials | null {
  return isWriteAccess(flags) && cred.uid !== 0 ? cred : null;
}

function checkLockType(t: number): void {
  if (t !== LockType.RDLCK && t !== LockType.WRLCK && t !== LockType.UNLCK) throw new P9Error(Errno.EINVAL, `lock type ${t}`);
}

/** Linux's dev_t encoding (glibc makedev). */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** O_NOATIME is refused for files the server's user does not own; fall back like QEMU does. */
async function reopenNoatime(fd: number, flags: number): Promise<number> {
  try {
    return await sys.reopen(fd, flags);
  } catch (err) {
    if (toErrno(err) === Errno.EPERM && flags & sys.O.O_NOATIME) return sys.reopen(fd, flags & ~sys.O.O_NOATIME);
    throw err;
  }
}

function reopenNoatimeNow(fd: number, flags: number): number | undefined {
  try {
    return sys.reopenNow(fd, flags);
  } catch (err) {
    if (toErrno(err) === Errno.EPERM && flags & sys.O.O_NOATIME) return sys.reopenNow(fd, flags & ~sys.O.O_NOATIME);
    throw err;
  }
}

/**
 * What Tlopen may open: a directory for reading, or a regular file. Device nodes, fifos and
 * sockets are never opened on the guest's behalf: a device would expose the host's hardware, a
 * fifo would block a server thread (CVE-2023-2861). In the mapped models they are host files,
 * and opening one still means nothing to the guest.
 */
function openable(n: LocalNode, flags: number): 'directory' | 'file' {
  if (n.isDirectory) {
    if (isWriteAccess(flags)) throw new P9Error(Errno.EISDIR);
    return 'directory';
  }
  if (!n.isRegular || n.guestFormat !== sys.O.S_IFREG) throw new P9Error(Errno.ENXIO, 'only regular files and directories can be opened');
  return 'file';
}
