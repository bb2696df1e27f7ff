import { QidType } from '../../protocol/constants.js';
import type { Qid } from '../../protocol/qid.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

const HIGH = 1n << 63n;
const INDEX_SHIFT = 48n;
const LOW_MASK = (1n << INDEX_SHIFT) - 1n;
const MAX_DEVICE_INDEX = (1 << 15) - 1;

/**
 * Maps host (st_dev, st_ino) to qid.path so that objects on different host filesystems never
 * collide (the client derives its inode number from qid.path alone):
 *  - the export's own filesystem keeps its inode numbers (top bit clear), so they match the host;
 *  - every other filesystem gets an index 1..32767 in bits 48..62, above its inode number, with
 *    the top bit set;
 *  - whatever does not fit (huge inode numbers, too many filesystems) gets a sequence number under
 *    index 0 with the top bit set, remembered for the server's life so it stays stable.
 */
export class QidMapper {
  private readonly devices = new Map<bigint, number>();
  private readonly overflow = new Map<string, bigint>();
  private nextOverflow = 1n;
  private readonly warned = new Set<bigint>();

  constructor(
    private readonly rootDev: bigint,
    /** QEMU's multidevs: remap (above), forbid (other filesystems are ENODEV), warn (raw inode numbers, which may collide). */
    private readonly multidevs: Multidevs = 'remap',
    /** Told once per other filesystem met under `warn`. */
    private readonly onWarn: (dev: bigint) => void = () => {},
  ) {}

  /** False for an object on another filesystem under `forbid`: the walk to it fails with ENODEV. */
  allows(dev: bigint): boolean {
    return this.multidevs !== 'forbid' || dev === this.rootDev;
  }

  path(dev: bigint, ino: bigint): bigint {
    if (dev === this.rootDev && ino < HIGH) return ino;
    if (this.multidevs === 'warn') {
      if (dev !== this.rootDev && !this.warned.has(dev)) {
        this.warned.add(dev);
        this.onWarn(dev);
      }
      return ino;
    }
    const index = this.indexOf(dev);
    if (index !== undefined && ino <= LOW_MASK) return HIGH | (BigInt(index) << INDEX_SHIFT) | ino;
    const key = `${dev}:${ino}`;
    let seq = this.overflow.get(key);
    if (seq === undefined) {
      seq = this.nextOverflow++;
      this.overflow.set(key, seq);
    }
    return HIGH | seq;
  }

  /**
   * How {@link path} maps the inode numbers of filesystem `dev` without remembering any: path =
   * prefix | ino for ino <= maxIno. Null when it has no such rule for that filesystem (more than
   * 32,767 of them). Lets a directory listing be mapped in the addon, entry by entry.
   */
  direct(dev: bigint): { prefix: bigint; maxIno: bigint } | null {
    if (dev === this.rootDev) return { prefix: 0n, maxIno: HIGH - 1n };
    if (this.multidevs === 'warn') {
      this.path(dev, 0n); // warns once, as a listing of that filesystem would
      return { prefix: 0n, maxIno: (1n << 64n) - 1n };
    }
    const index = this.indexOf(dev);
    return index === undefined ? null : { prefix: HIGH | (BigInt(index) << INDEX_SHIFT), maxIno: LOW_MASK };
  }

  /** The index of another filesystem, given on first sight while there are some left. */
  private indexOf(dev: bigint): number | undefined {
    let index = this.devices.get(dev);
    if (index === undefined && this.devices.size < MAX_DEVICE_INDEX) {
      index = this.devices.size + 1;
      this.devices.set(dev, index);
    }
    return index;
  }

  qid(dev: bigint, ino: bigint, mode: number, mtimeSec: bigint, mtimeNsec: bigint, size: bigint): Qid {
    return { type: qidType(mode), version: qidVersion(mtimeSec, mtimeNsec, size), path: this.path(dev, ino) };
  }
}

export const multidevsPolicies = ['remap', 'forbid', 'warn'] as const;
export type Multidevs = (typeof multidevsPolicies)[number];

export function qidType(mode: number): number {
  const fmt = mode & S_IFMT;
  if (fmt === S_IFDIR) return QidType.DIR;
  if (fmt === S_IFLNK) return QidType.SYMLINK;
  return QidType.FILE;
}

/**
 * Changes whenever content changes, at nanosecond resolution (QEMU's is per second), and is
 * never 0: newer clients bypass their cache for files whose version is 0.
 */
export function qidVersion(mtimeSec: bigint, mtimeNsec: bigint, size: bigint): number {
  let h = Number(BigInt.asUintN(32, mtimeSec)) ^ Math.imul(Number(mtimeNsec & 0xffffffffn), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ Number(BigInt.asUintN(32, size)) ^ Number(BigInt.asUintN(32, size >> 32n));
  h = (h ^ (h >>> 13)) >>> 0;
  return h === 0 ? 1 : h;
}
