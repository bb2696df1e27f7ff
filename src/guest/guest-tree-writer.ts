import { spawn } from 'node:child_process';
import { basename, dirname } from 'node:path';
import { extract, type Header } from 'tar-stream';
import type { Client } from '../client/client.js';
import { LinuxOpenFlag, SetattrValid } from '../protocol/constants.js';
import { Errno, P9Error } from '../protocol/errno.js';

/** Top-level directories that live in /usr on a merged-/usr system (debootstrap's list). */
const MERGED_USR_DIRS = new Set(['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libo32', 'libx32']);

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

const isErrno = (err: unknown, e: number) => err instanceof P9Error && err.errno === e;

/** The directory holding a relative path, '' for the top. */
const parentOf = (path: string) => (path.includes('/') ? dirname(path) : '');

/**
 * Writes a file tree into a virtfs export through the 9P protocol, as the guest's root: the
 * server's security model decides how owners, modes and device nodes are kept on the host, so a
 * tree made here is exactly what a root process in a guest would have made.
 */
export class GuestTreeWriter {
  private readonly dirs = new Map<string, number>();
  /** Merged-/usr directories the packages used, to be linked from / at the end. */
  readonly mergedSeen = new Set<string>();
  /** Paths that already existed and were kept (tar -k, as debootstrap extracts). */
  readonly kept: string[] = [];

  constructor(private readonly client: Client, private readonly root: number, private readonly mergeUsr: boolean) {
    this.dirs.set('', root);
  }

  /** Where `path` (relative, from a package) lands once /usr is merged. */
  place(path: string): string {
    const p = path.replace(/^\.?\/+/, '').replace(/^\.\//, '').replace(/\/+$/, '');
    if (!this.mergeUsr) return p;
    const top = p.split('/')[0]!;
    if (!MERGED_USR_DIRS.has(top)) return p;
    this.mergedSeen.add(top);
    return `usr/${p}`;
  }

  /** A fid on directory `path`, made (root-owned, 0755) where missing. */
  async dir(path: string): Promise<number> {
    const known = this.dirs.get(path);
    if (known !== undefined) return known;
    const parent = await this.dir(parentOf(path));
    const name = basename(path);
    try {
      await this.client.mkdir(parent, name, 0o755, 0);
    } catch (err) {
      if (!isErrno(err, Errno.EEXIST)) throw err;
    }
    const { fid } = await this.client.walk(parent, [name]);
    this.dirs.set(path, fid);
    return fid;
  }

  async mkdir(path: string, mode: number, uid = 0, gid = 0, mtime?: number): Promise<void> {
    const parent = await this.dir(parentOf(path));
    let fresh = true;
    try {
      await this.client.mkdir(parent, basename(path), mode & 0o777, gid);
    } catch (err) {
      if (!isErrno(err, Errno.EEXIST)) throw err;
      fresh = false;
    }
    if (!fresh) return;
    const fid = await this.dir(path);
    await this.finish(fid, mode, uid, gid, mtime);
  }

  /** Owner, then the whole mode (a chown clears setuid bits), then the modification time. */
  private async finish(fid: number, mode: number, uid: number, gid: number, mtime?: number): Promise<void> {
    if (uid !== 0 || gid !== 0) await this.client.setattr(fid, { valid: SetattrValid.UID | SetattrValid.GID, uid, gid });
    await this.client.setattr(fid, { valid: SetattrValid.MODE, mode: mode & 0o7777 });
    if (mtime !== undefined) {
      const t = BigInt(mtime);
      await this.client.setattr(fid, { valid: SetattrValid.ATIME | SetattrValid.ATIME_SET | SetattrValid.MTIME | SetattrValid.MTIME_SET, atimeSec: t, mtimeSec: t });
    }
  }

  /** A regular file; false if something of that name was there already (and is kept). */
  async file(path: string, data: Buffer, mode: number, uid = 0, gid = 0, mtime?: number): Promise<boolean> {
    const parent = await this.dir(parentOf(path));
    const { fid } = await this.client.walk(parent, []);
    try {
      try {
        await this.client.create(fid, basename(path), LinuxOpenFlag.WRONLY | LinuxOpenFlag.CREAT | LinuxOpenFlag.EXCL, mode & 0o777, gid);
      } catch (err) {
        if (isErrno(err, Errno.EEXIST)) {
          this.kept.push(path);
          return false;
        }
        throw err;
      }
      if (data.length) await this.client.writeAll(fid, data);
      await this.finish(fid, mode, uid, gid, mtime);
      return true;
    } finally {
      await this.client.clunk(fid);
    }
  }

  async symlink(path: string, target: string): Promise<void> {
    const parent = await this.dir(parentOf(path));
    try {
      await this.client.symlink(parent, basename(path), target, 0);
    } catch (err) {
      if (!isErrno(err, Errno.EEXIST)) throw err;
      this.kept.push(path);
    }
  }

  async hardlink(path: string, existing: string): Promise<void> {
    const parent = await this.dir(parentOf(path));
    const { fid } = await this.client.walk(this.root, existing.split('/'));
    try {
      await this.client.link(parent, fid, basename(path));
    } catch (err) {
      if (!isErrno(err, Errno.EEXIST)) throw err;
      this.kept.push(path);
    } finally {
      await this.client.clunk(fid);
    }
  }

  /** A device node or fifo; `type` is S_IFCHR, S_IFBLK or S_IFIFO. */
  async node(path: string, type: number, mode: number, major = 0, minor = 0, uid = 0, gid = 0): Promise<void> {
    const parent = await this.dir(parentOf(path));
    try {
      await this.client.mknod(parent, basename(path), type | (mode & 0o7777), major, minor, gid);
    } catch (err) {
      if (!isErrno(err, Errno.EEXIST)) throw err;
      this.kept.push(path);
      return;
    }
    if (uid !== 0) {
      const { fid } = await this.client.walk(parent, [basename(path)]);
      await this.client.setattr(fid, { valid: SetattrValid.UID, uid }).finally(() => this.client.clunk(fid));
    }
  }

  /** Unpack a .deb's files (its data.tar, through dpkg-deb) into the tree, keeping what exists. */
  async unpackDeb(deb: string): Promise<number> {
    const child = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    const tar = extract();
    let count = 0;
    tar.on('entry', (h: Header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        this.entry(h, Buffer.concat(chunks)).then(() => {
          count++;
          next();
        }, (err: Error) => tar.destroy(new Error(`${deb}: ${h.name}: ${err.message}`)));
      });
    });
    const done = new Promise<void>((resolve, reject) => {
      tar.once('finish', resolve);
      tar.once('error', reject);
    });
    child.stdout.pipe(tar);
    await done;
    const code = await exited;
    if (code !== 0) throw new Error(`dpkg-deb --fsys-tarfile ${deb} failed: ${stderr.trim()}`);
    return count;
  }

  private async entry(h: Header, data: Buffer): Promise<void> {
    const path = this.place(h.name);
    if (path === '' || path === '.') return;
    const mode = h.mode ?? 0o644;
    const [uid, gid] = [h.uid ?? 0, h.gid ?? 0];
    const mtime = h.mtime ? Math.floor(h.mtime.getTime() / 1000) : undefined;
    switch (h.type) {
      case 'directory':
        return this.mkdir(path, mode, uid, gid, mtime);
      case 'file':
      case 'contiguous-file':
        await this.file(path, data, mode, uid, gid, mtime);
        return;
      case 'symlink':
        return this.symlink(path, h.linkname ?? '');
      case 'link':
        return this.hardlink(path, this.place(h.linkname ?? ''));
      case 'character-device':
        return this.node(path, S_IFCHR, mode, h.devmajor, h.devminor, uid, gid);
      case 'block-device':
        return this.node(path, S_IFBLK, mode, h.devmajor, h.devminor, uid, gid);
      case 'fifo':
        return this.node(path, S_IFIFO, mode, 0, 0, uid, gid);
      default:
        throw new Error(`unsupported tar entry type ${h.type}`);
    }
  }

  /** Link each merged directory the packages used from / (bin -> usr/bin), as debootstrap does. */
  async linkMergedUsr(): Promise<void> {
    for (const d of this.mergedSeen) await this.symlink(d, `usr/${d}`);
  }

  async close(): Promise<void> {
    for (const [path, fid] of this.dirs) if (path !== '') await this.client.clunk(fid).catch(() => {});
    this.dirs.clear();
  }
}
