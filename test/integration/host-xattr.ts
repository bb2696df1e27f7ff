import { execFileSync } from 'node:child_process';

/** A host xattr's raw value as the host's own getfattr reads it, or null if the object has none by that name. */
export function hostXattr(path: string, name: string): Buffer | null {
  try {
    return execFileSync('getfattr', ['-h', '--only-values', '-n', name, path], { stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

/** QEMU's mapped-xattr encodings: u32 little-endian (uid, gid, mode), u64 (rdev). */
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

export function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}
