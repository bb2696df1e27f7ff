import { randomBytes } from 'node:crypto';
import { readlink as readlinkPath } from 'node:fs/promises';
import type { Attr, Backend, Credentials, DirentSink, LockRange, Node, OpenFile, SetattrRequest, Statfs, WalkResult } from '../backend.js';
import { AT_REMOVEDIR, DirentType, LinuxOpenFlag, LockType, QidType, SetattrValid, XATTR_SIZE_MAX, XattrFlag } from '../../protocol/constants.js';
import { Errno, P9Error, toErrno } from '../../protocol/errno.js';
import type { Qid } from '../../protocol/qid.js';
import { LocalNode, LocalOpenFile } from './local-node.js';
import { LockWaits } from './lock-waits.js';
import { checkComponent, checkExistingName, checkNewName, isDot, isDotDot } from './names.js';
import { NodePlaces } from './node-places.js';
import { isWriteAccess } from '../../protocol/open-flags.js';
import { hostOpenFlags } from './open-flags.js';
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
}

/**
 * The host filesystem below one directory. Every object is reached by walking one component at a
 * time from the export root's descriptor with O_NOFOLLOW, and every operation afterwards goes
 * through the object's own descriptor, so no symlink is ever followed on the host and a rename
 * cannot redirect an operation elsewhere. Nothing outside the export root is reachable.
 */
export class LocalBackend implements Backend {
  /** Where each node's by-name metadata is (mapped-file only). */
  private readonly places = new NodePlaces();
  /** Blocking lock requests, asleep until this server releases a lock on their inode. */
  private readonly lockWaits = new LockWaits();

  private constructor(
    private readonly rootNode: LocalNode,
    /** The root's path as the kernel names it, to locate objects for legacy Tremove/Trename. */
    private readonly rootPath: Buffer,
    private readonly qids: QidMapper,
    private readonly model: SecurityModel,
  ) {
    if (model.byName) this.places.setRoot(rootNode);
  }

  static async open(options: LocalBackendOptions): Promise<LocalBackend> {
    // Modes arrive from the client with its umask already applied; the server's own must not
    // strip more (process-wide, which is why a server process serves with umask 0).
    process.umask(0);
    const model = options.model;
    const [fd, stat] = await sys.openRoot(Buffer.from(options.root), model.meta);
    const qids = new QidMapper(stat[S.dev]!, options.multidevs, options.onMultidevWarning);
    const root = makeNode(qids, model, fd, stat);
    const rootPath = await readlinkPath(procPath(fd), { encoding: 'buffer' });
    return new LocalBackend(root, rootPath, qids, model);
  }

  async close(): Promise<void> {
    this.rootNode.release();
  }

  confine<T>(cred: Credentials, fn: () => Promise<T>): Promise<T> {
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
        // Walk the run of ordinary names up to the next ".." in one thread-pool hop.
        let j = i;
        while (j < names.length && !isDotDot(names[j]!) && !(this.model.byName && isDot(names[j]!))) this.checkName(names[j++]!);
        let run = await sys.walk(cur.fd, names.slice(i, j), this.model.meta);
        // Under --multidevs forbid the walk stops where it would enter another filesystem.
        const barred = run.stats.findIndex((st) => !this.qids.allows(st[S.dev]!));
        if (barred >= 0) {
          for (const fd of run.fds.slice(barred)) sys.close(fd).catch(() => {});
          run = { fds: run.fds.slice(0, barred), stats: run.stats.slice(0, barred), errno: Errno.ENODEV };
        }
        for (const st of run.stats) qids.push(this.qidOf(st));
        cur = this.adoptWalk(cur, names.slice(i, j), run);
        if (run.errno !== 0) throw new P9Error(run.errno);
        i = j;
      }
      return { qids, node: cur, error: null };
    } catch (err) {
      cur.release();
      return { qids, node: null, error: err instanceof P9Error ? err : new P9Error(toErrno(err)) };
    }
  }

  /**
   * Turn a walked run into nodes, releasing `from`; resolves the last node (or `from` if none).
   * Where metadata is found by name, every step stays a node, held by the next as the directory
   * its entry is in; otherwise the intermediate descriptors are closed at once.
   */
  private adoptWalk(from: LocalNode, names: readonly Buffer[], run: sys.WalkResult): LocalNode {
    let cur = from;
    const last = run.fds.length - 1;
    for (let k = 0; k <= last; k++) {
      if (!this.model.byName && k < last) {
        sys.close(run.fds[k]!).catch(() => {});
        continue;
      }
      const node = this.nodeOf(run.fds[k]!, run.stats[k]!);
      if (this.model.byName) this.places.setEntry(node, cur, names[k]!);
      cur.release();
      cur = node;
    }
    return cur;
  }

  /**
   * ".." of the export root is the root itself: the walk never climbs out. Where metadata is found
   * by name, the parent is the directory node the walk came through when it still is ".." (else
   * its metadata is not known and its host stat shows through).
   */
  private async parentOf(node: LocalNode): Promise<LocalNode> {
    if (this.isRoot(node)) return this.rootNode.retain();
    if (!node.isDirectory) throw new P9Error(Errno.ENOTDIR);
    const [fd, st] = await sys.openPath(node.fd, DOTDOT, this.model.meta);
    const p = node.place;
    const known = p.kind === 'entry' ? p.parent : null;
    if (known && known.dev === st[S.dev] && known.ino === st[S.ino]) {
      await sys.close(fd);
      return known.retain();
    }
    if (this.model.byName && st[S.dev] === this.rootNode.dev && st[S.ino] === this.rootNode.ino) {
      await sys.close(fd);
      return this.rootNode.retain();
    }
    return this.nodeOf(fd, st);
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
  private async withTarget<T>(node: LocalNode, fn: (t: ModelTarget) => Promise<T>): Promise<T> {
    const p = node.place;
    switch (p.kind) {
      case 'entry': {
        const parent = p.parent.retain();
        try {
          return await fn({ fd: node.fd, at: { dir: parent.fd, name: p.name }, kept: null });
        } finally {
          parent.release();
        }
      }
      case 'root':
        return fn({ fd: node.fd, at: { dir: node.fd, name: null }, kept: null });
      case 'kept':
        return fn({ fd: node.fd, at: null, kept: p.meta });
      case 'none':
        return fn({ fd: node.fd, at: null, kept: null });
    }
  }

  private isRoot(node: LocalNode): boolean {
    return node.dev === this.rootNode.dev && node.ino === this.rootNode.ino;
  }

  private nodeOf(fd: number, st: RawStat): LocalNode {
    return makeNode(this.qids, this.model, fd, st);
  }

  /** A qid from a stat taken with the model's metadata: its type is the guest's. */
  private qidOf(st: RawStat): Qid {
    return qidOf(this.qids, st, this.model.view(st).mode);
  }

  async getattr(node: Node, open: OpenFile | null): Promise<Attr> {
    const st = await this.withTarget(local(node), (t) => this.model.stat(t, open ? (open as LocalOpenFile).fd : t.fd));
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
      await sys.utimens(n.fd, aS, aN, mS, mN);
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
      await (o?.writable ? sys.truncate(o.fd, req.size, true) : sys.truncate(n.fd, req.size, false));
    }
  }

  async open(node: Node, flags: number, cred: Credentials): Promise<OpenFile> {
    const n = local(node);
    if (n.isDirectory) {
      if (isWriteAccess(flags)) throw new P9Error(Errno.EISDIR);
      const fd = await sys.reopen(n.fd, sys.O.O_RDONLY | sys.O.O_DIRECTORY);
      return new LocalOpenFile(fd, n.retain(), false, null);
    }
    // Device nodes, fifos and sockets are never opened on the guest's behalf: a device would
    // expose the host's hardware, a fifo would block a server thread (CVE-2023-2861). In the
    // mapped models they are host files, and opening one still means nothing to the guest.
    if (!n.isRegular || n.guestFormat !== sys.O.S_IFREG) throw new P9Error(Errno.ENXIO, 'only regular files and directories can be opened');
    const fd = await reopenNoatime(n.fd, hostOpenFlags(flags));
    return new LocalOpenFile(fd, n.retain(), isWriteAccess(flags), writerOf(flags, cred));
  }

  async create(dir: Node, name: Buffer, flags: number, mode: number, cred: Credentials): Promise<OpenFile> {
    const d = local(dir);
    this.checkNew(name);
    let fd: number;
    try {
      fd = await this.model.createFile(d.fd, name, hostOpenFlags(flags), mode, cred);
    } catch (err) {
      // O_CREAT without O_EXCL on a name that appeared meanwhile opens it, as open(2) would;
      // through the walk, so the existing object gets the same type checks as Tlopen.
      if (toErrno(err) !== Errno.EEXIST || flags & LinuxOpenFlag.EXCL) throw err;
      const [pfd, st] = await sys.openPath(d.fd, name, this.model.meta);
      const node = this.entryNode(pfd, st, d, name);
      try {
        return await this.open(node, flags & ~LinuxOpenFlag.TRUNC, cred);
      } finally {
        node.release();
      }
    }
    try {
      const pfd = await sys.reopen(fd, sys.O.O_PATH);
      const node = this.entryNode(pfd, await sys.fstat(pfd, this.model.meta, { dir: d.fd, name }), d, name);
      return new LocalOpenFile(fd, node, isWriteAccess(flags), writerOf(flags, cred));
    } catch (err) {
      sys.closeSync(fd);
      throw err;
    }
  }

  /** A node reached as entry `name` of `dir`. */
  private entryNode(fd: number, st: RawStat, dir: LocalNode, name: Buffer): LocalNode {
    const node = this.nodeOf(fd, st);
    if (this.model.byName) this.places.setEntry(node, dir, name);
    return node;
  }

  async mkdir(dir: Node, name: Buffer, mode: number, cred: Credentials): Promise<Qid> {
    this.checkNew(name);
    await this.model.mkdir(local(dir).fd, name, mode, cred);
    return this.qidByName(local(dir), name);
  }

  async mknod(dir: Node, name: Buffer, mode: number, major: number, minor: number, cred: Credentials): Promise<Qid> {
    this.checkNew(name);
    const format = mode & S_IFMT;
    const allowed = [sys.O.S_IFREG, sys.O.S_IFIFO, sys.O.S_IFSOCK, sys.O.S_IFCHR, sys.O.S_IFBLK];
    if (!allowed.includes(format)) throw new P9Error(Errno.EINVAL, 'mknod of a directory or symlink');
    await this.model.mknod(local(dir).fd, name, mode & (S_IFMT | 0o7777), makedev(major, minor), cred);
    return this.qidByName(local(dir), name);
  }

  async symlink(dir: Node, name: Buffer, target: Buffer, cred: Credentials): Promise<Qid> {
    this.checkNew(name);
    if (target.includes(0)) throw new P9Error(Errno.EINVAL, 'symlink target contains NUL');
    await this.model.symlink(local(dir).fd, name, target, cred);
    return this.qidByName(local(dir), name);
  }

  /**
   * The qid of an object just created under `name`. The model made it whole (born owned, or its
   * metadata written through its own descriptor), so this only identifies it: a racing swap of
   * the name can at worst report another object's qid, never change anything.
   */
  private async qidByName(dir: LocalNode, name: Buffer): Promise<Qid> {
    const [fd, st] = await sys.openPath(dir.fd, name, this.model.meta);
    await sys.close(fd);
    return this.qidOf(st);
  }

  async link(dir: Node, target: Node, name: Buffer): Promise<void> {
    this.checkNew(name);
    const t = local(target);
    if (t.isDirectory) throw new P9Error(Errno.EPERM, 'hard links to directories are not allowed');
    await this.withTarget(t, (mt) => this.model.link(mt, local(dir).fd, name));
  }

  readlink(node: Node): Promise<Buffer> {
    const n = local(node);
    if (n.guestFormat !== sys.O.S_IFLNK) return Promise.reject(new P9Error(Errno.EINVAL, 'not a symlink'));
    return this.model.readlink(n.fd, n.format);
  }

  async renameat(oldDir: Node, oldName: Buffer, newDir: Node, newName: Buffer): Promise<void> {
    this.checkExisting(oldName);
    this.checkNew(newName);
    const o = local(oldDir);
    await this.renameEntry({ fd: o.fd, dev: o.dev, ino: o.ino }, oldName, local(newDir), newName);
  }

  async rename(node: Node, newDir: Node, newName: Buffer): Promise<void> {
    this.checkNew(newName);
    await this.withEntryAside(local(node), (dir, aside) => this.renameEntry(dir, aside, local(newDir), newName));
  }

  /** Rename through the model; nodes found by name follow their entry, and those it replaces keep their metadata. */
  private async renameEntry(oldDir: HeldDir, oldName: Buffer, newDir: LocalNode, newName: Buffer, flags = 0): Promise<void> {
    const same = oldDir.dev === newDir.dev && oldDir.ino === newDir.ino && oldName.equals(newName);
    const replaced = this.model.byName && !same ? await this.keptMetaOf(newDir, newName) : null;
    await this.model.rename(oldDir.fd, oldName, newDir.fd, newName, flags);
    if (!this.model.byName || same) return;
    if (replaced) this.places.retire(newDir, newName, replaced);
    this.places.move(oldDir, oldName, newDir, newName);
  }

  async unlinkat(dir: Node, name: Buffer, flags: number): Promise<void> {
    this.checkExisting(name);
    if (flags & ~AT_REMOVEDIR) throw new P9Error(Errno.EINVAL, `unlinkat flags 0x${flags.toString(16)}`);
    const d = local(dir);
    await this.unlinkEntry({ fd: d.fd, dev: d.dev, ino: d.ino }, name, flags & AT_REMOVEDIR ? sys.O.AT_REMOVEDIR : 0);
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
  private async withEntryAside(node: LocalNode, act: (dir: LocalNode, aside: Buffer) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let at: { dir: LocalNode; name: Buffer };
      try {
        at = await this.locate(node);
      } catch (err) {
        // Moved between reading its path and checking it: look again.
        if (toErrno(err) === Errno.ENOENT && attempt < ASIDE_ATTEMPTS) continue;
        throw err;
      }
      try {
        const aside = Buffer.from(`${ASIDE_PREFIX}${randomBytes(8).toString('hex')}`);
        try {
          await this.renameEntry(at.dir, at.name, at.dir, aside, sys.O.RENAME_NOREPLACE);
        } catch (err) {
          // The name went away between finding and moving it: look again.
          if (toErrno(err) === Errno.ENOENT && attempt < ASIDE_ATTEMPTS) continue;
          throw err;
        }
        const ours = await this.holds(at.dir, aside, node).catch(() => false);
        if (ours) {
          try {
            await act(at.dir, aside);
          } catch (err) {
            await this.renameEntry(at.dir, aside, at.dir, at.name, sys.O.RENAME_NOREPLACE).catch(() => {});
            throw err;
          }
          return;
        }
        await this.renameEntry(at.dir, aside, at.dir, at.name, sys.O.RENAME_NOREPLACE);
        if (attempt === ASIDE_ATTEMPTS) throw new P9Error(Errno.ENOENT, 'object keeps moving');
      } finally {
        at.dir.release();
      }
    }
  }

  /** Whether entry dir/name is `node`'s object. */
  private async holds(dir: LocalNode, name: Buffer, node: LocalNode): Promise<boolean> {
    const [fd, st] = await sys.openPath(dir.fd, name);
    await sys.close(fd);
    return st[S.dev] === node.dev && st[S.ino] === node.ino;
  }

  /** Unlink through the model; nodes held by that name keep their metadata in memory. */
  private async unlinkEntry(dir: HeldDir, name: Buffer, flags: number): Promise<void> {
    const kept = this.model.byName ? await this.keptMetaOf(dir, name) : null;
    await this.model.unlink(dir.fd, name, flags);
    if (kept) this.places.retire(dir, name, kept);
  }

  /**
   * The by-name metadata of entry dir/name, read for the nodes held by it before the entry goes
   * (null if none is held): the metadata file goes with the name, the object may live on.
   */
  private async keptMetaOf(dir: HeldDir, name: Buffer): Promise<BigUint64Array | null> {
    const held = this.places.at(dir, name);
    if (held.length === 0) return null;
    const st = await sys.fstat(held[0]!.fd, this.model.meta, { dir: dir.fd, name });
    return st.slice(S.metaFound, S.metaRdev + 1);
  }

  /**
   * Where an object currently lives, for the two legacy messages that name an object rather than
   * a directory entry. The kernel's own record of the descriptor's path (kept current across
   * renames) is re-walked from the root without following anything, and the entry found must be
   * the same inode.
   */
  private async locate(node: LocalNode): Promise<{ dir: LocalNode; name: Buffer }> {
    if (this.isRoot(node)) throw new P9Error(Errno.EBUSY, 'the export root cannot be removed or renamed');
    const path = await readlinkPath(procPath(node.fd), { encoding: 'buffer' });
    const prefix = Buffer.concat([this.rootPath, SLASH]);
    if (!path.subarray(0, prefix.length).equals(prefix) || path.toString('latin1').endsWith(' (deleted)')) {
      throw new P9Error(Errno.ENOENT, 'object is no longer reachable from the export');
    }
    const parts = splitPath(path.subarray(prefix.length));
    const name = parts.pop()!;
    let dir = this.rootNode.retain();
    if (parts.length > 0) {
      const run = await sys.walk(this.rootNode.fd, parts);
      for (let k = 0; k < run.fds.length - 1; k++) sys.closeSync(run.fds[k]!);
      if (run.errno !== 0) {
        dir.release();
        if (run.fds.length > 0) sys.closeSync(run.fds[run.fds.length - 1]!);
        throw new P9Error(run.errno);
      }
      dir.release();
      // A directory handle for this one operation; where metadata is by name, nodes moved through it are kept by it.
      dir = this.nodeOf(run.fds[run.fds.length - 1]!, run.stats[run.stats.length - 1]!);
    }
    try {
      if (!(await this.holds(dir, name, node))) throw new P9Error(Errno.ENOENT, 'object moved');
      return { dir, name };
    } catch (err) {
      dir.release();
      throw err;
    }
  }

  read(file: OpenFile, offset: bigint, buf: Buffer, bufOffset: number, count: number): Promise<number> {
    return sys.pread((file as LocalOpenFile).fd, buf, bufOffset, count, offset);
  }

  async write(file: OpenFile, offset: bigint, data: Buffer): Promise<number> {
    const f = file as LocalOpenFile;
    if (!f.writable) throw new P9Error(Errno.EBADF, 'file is not open for writing');
    if (data.length === 0) return 0;
    const first = f.unwritten;
    f.unwritten = false;
    const n = await this.withTarget(f.node, (t) => this.model.write(f.fd, t, f.node.guestFormat, data, offset, f.writer, first));
    // The client retries a zero count forever; say why instead.
    if (n === 0) throw new P9Error(Errno.ENOSPC);
    return n;
  }

  readdir(file: OpenFile, cookie: bigint, maxBytes: number, add: DirentSink): Promise<void> {
    const f = file as LocalOpenFile;
    if (!f.node.isDirectory) return Promise.reject(new P9Error(Errno.ENOTDIR));
    const run = f.dirQueue.then(() => this.readdirNow(f, cookie, maxBytes, add));
    f.dirQueue = run.catch(() => {});
    return run;
  }

  /** Resume at the host's own d_off cookie: O(1), never a rescan, stable across modifications. */
  private async readdirNow(f: LocalOpenFile, cookie: bigint, maxBytes: number, add: DirentSink): Promise<void> {
    const size = Math.max(4096, Math.min(maxBytes, 1 << 20));
    if (!f.direntBuf || f.direntBuf.length < size) f.direntBuf = Buffer.allocUnsafe(size);
    const buf = f.direntBuf;
    const dir = f.node;
    const atRoot = this.isRoot(dir);
    for (;;) {
      const n = await sys.getdents(f.fd, cookie, buf.subarray(0, size));
      if (n === 0) return;
      let full = false;
      sys.parseDirents(buf, n, (ino, off, hostType, name) => {
        if (this.model.isReserved(name)) {
          cookie = off;
          return true;
        }
        const path = atRoot && isDotDot(name) ? this.rootNode.qid.path : this.qids.path(dir.dev, ino);
        const type = this.model.direntType(hostType);
        const qid: Qid = { type: direntQidType(type), version: 0, path };
        if (!add(qid, off, type, name)) {
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
    const s = await sys.fstatfs(local(node).fd);
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
    const v = await this.model.xattrGet(local(node).fd, name);
    if (v.length > XATTR_SIZE_MAX) throw new P9Error(Errno.E2BIG);
    return v;
  }

  async xattrList(node: Node): Promise<Buffer> {
    const list = await this.model.xattrList(local(node).fd);
    if (list.length > XATTR_SIZE_MAX) throw new P9Error(Errno.E2BIG);
    return list;
  }

  async xattrSet(node: Node, name: Buffer, value: Buffer, flags: number): Promise<void> {
    if (flags & ~(XattrFlag.CREATE | XattrFlag.REPLACE)) throw new P9Error(Errno.EINVAL, 'xattr flags');
    await this.model.xattrSet(local(node).fd, name, value, flags);
  }

  async xattrRemove(node: Node, name: Buffer): Promise<void> {
    await this.model.xattrRemove(local(node).fd, name);
  }
}

const DOTDOT = Buffer.from('..');
/** Legacy Tremove/Trename move an entry aside under this prefix and a random suffix before acting. */
const ASIDE_PREFIX = '.virtfs-aside-';
/** Tries before answering ENOENT for an object whose name keeps being swapped. */
const ASIDE_ATTEMPTS = 8;

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

function makeNode(qids: QidMapper, model: SecurityModel, fd: number, st: RawStat): LocalNode {
  const mode = model.view(st).mode;
  const format = LocalNode.formatOf(Number(st[S.mode]));
  return new LocalNode(fd, st[S.dev]!, st[S.ino]!, format, LocalNode.formatOf(mode), qidOf(qids, st, mode));
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
