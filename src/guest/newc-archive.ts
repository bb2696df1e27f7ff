import { gzipSync } from 'node:zlib';

/** One member of an initramfs: a directory, a file, a symlink (data is its target) or a device. */
export interface ArchiveEntry {
  path: string;
  /** Type and permission bits, e.g. S_IFREG | 0o755. */
  mode: number;
  data?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const pad4 = (n: number) => (4 - (n % 4)) % 4;

/**
 * A gzipped "newc" cpio archive, the format the kernel unpacks as an initramfs. Written here
 * rather than by cpio(1) so that an ordinary user can put root-owned device nodes in it, and no
 * host tool is needed.
 */
export function newcArchive(entries: readonly ArchiveEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const put = (e: ArchiveEntry) => {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.path.replace(/^\/+/, '')}\0`);
    const header =
      '070701' +
      [ino++, e.mode, 0, 0, (e.mode & 0o170000) === S_IFDIR ? 2 : 1, 0, data.length, 0, 0, e.rdevMajor ?? 0, e.rdevMinor ?? 0, name.length, 0]
        .map(hex8)
        .join('');
    parts.push(Buffer.from(header, 'latin1'), name, Buffer.alloc(pad4(header.length + name.length)), data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) put(e);
  put({ path: 'TRAILER!!!', mode: 0 });
  return gzipSync(Buffer.concat(parts), { level: 1 });
}
