import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BOOT_INIT } from './boot-init.js';
import { unpackedPackage } from './debian-package.js';
import type { GuestKernel } from './guest-kernel.js';
import { GUEST_MODULES } from './guest-kernel.js';
import { cacheDir, runTool } from './host-tools.js';
import { newcArchive, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, type ArchiveEntry } from './newc-archive.js';

/** What one boot asks of /init (see boot-init.ts). */
export interface BootConfig {
  mountOptions: string;
  /** Run this chrooted in the new root and power off, instead of its /sbin/init. */
  command?: readonly string[];
}

const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

/** The small archive appended to the cached one for each boot: the kernel unpacks both in order. */
export function bootConfigArchive(c: BootConfig): Buffer {
  const lines = [`MOUNT_OPTS=${quote(c.mountOptions)}`];
  if (c.command) lines.push('RUN_COMMAND=yes', `set -- ${c.command.map(quote).join(' ')}`);
  return newcArchive([{ path: 'boot.conf', mode: S_IFREG | 0o644, data: Buffer.from(`${lines.join('\n')}\n`) }]);
}

/**
 * busybox (from Debian's busybox-static, fetched with apt), the kernel's network and 9p modules
 * and /init, as a gzipped newc archive kept in the cache by content.
 */
export function baseInitramfs(kernel: GuestKernel): string {
  const busyboxDir = unpackedPackage('busybox-static');
  const busybox = join(busyboxDir, 'bin', 'busybox');
  const modules = existsSync(kernel.modules) ? readdirSync(kernel.modules).filter((f) => f.endsWith('.ko')) : [];
  const key = createHash('sha256').update(BOOT_INIT).update(busyboxDir).update(kernel.pkg).update(modules.join(',')).digest('hex').slice(0, 16);
  const out = join(cacheDir(), `boot-initramfs-${key}.cpio.gz`);
  if (existsSync(out)) return out;
  const entries: ArchiveEntry[] = [];
  for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'lib', 'lib/modules']) entries.push({ path: d, mode: S_IFDIR | 0o755 });
  entries.push({ path: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
  entries.push({ path: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(busybox) });
  for (const applet of runTool(busybox, ['--list']).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') entries.push({ path: `bin/${applet}`, mode: S_IFLNK | 0o777, data: Buffer.from('busybox') });
  }
  for (const m of GUEST_MODULES) {
    if (modules.includes(`${m}.ko`)) entries.push({ path: `lib/modules/${m}.ko`, mode: S_IFREG | 0o644, data: readFileSync(join(kernel.modules, `${m}.ko`)) });
  }
  entries.push({ path: 'init', mode: S_IFREG | 0o755, data: Buffer.from(BOOT_INIT) });
  mkdirSync(cacheDir(), { recursive: true, mode: 0o755 });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, newcArchive(entries), { mode: 0o644 });
  renameSync(tmp, out);
  return out;
}
