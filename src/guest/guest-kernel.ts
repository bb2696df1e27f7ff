import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fetchAndUnpack } from './debian-package.js';
import { cacheDir, runTool } from './host-tools.js';

/**
 * The modules a guest loads to reach virtfs over its network, in load order (busybox insmod
 * takes them as given, with no modules.dep): virtio PCI and net, then the 9p client.
 */
export const GUEST_MODULES = [
  'virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci',
  'failover', 'net_failover', 'virtio_net', 'netfs', 'fscache', '9pnet', '9pnet_fd', '9pnet_virtio', '9p',
] as const;

export interface GuestKernel {
  /** The Debian package it came from, e.g. linux-image-6.1.0-41-amd64. */
  pkg: string;
  vmlinuz: string;
  /** Holds NAME.ko for each of GUEST_MODULES. */
  modules: string;
}

/** The kernel package linux-image-amd64 depends on today. */
function kernelPackage(): string {
  const out = runTool('apt-cache', ['depends', 'linux-image-amd64']);
  const m = /Depends:\s*(linux-image-\S+)/.exec(out);
  if (!m) throw new Error('apt knows no linux-image-amd64 (run apt-get update, or add the Debian archive to apt\'s sources)');
  return m[1]!;
}

/**
 * Debian's stock kernel and the modules a guest needs, fetched with apt on first use and kept in
 * the cache by package name (only vmlinuz and those modules: the whole package is 400 MB).
 */
export function guestKernel(): GuestKernel {
  const pkg = kernelPackage();
  const dir = join(cacheDir(), 'kernel', pkg);
  const found = { pkg, vmlinuz: join(dir, 'vmlinuz'), modules: join(dir, 'modules') };
  if (existsSync(found.vmlinuz)) return found;
  mkdirSync(join(cacheDir(), 'kernel'), { recursive: true, mode: 0o755 });
  const work = mkdtempSync(join(cacheDir(), 'kernel', '.fetch-'));
  try {
    const x = fetchAndUnpack(pkg, work, 'x');
    const staging = join(work, 'out');
    mkdirSync(join(staging, 'modules'), { recursive: true, mode: 0o755 });
    const image = readdirSync(join(x, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!image) throw new Error(`${pkg} has no boot/vmlinuz-*`);
    copyFileSync(join(x, 'boot', image), join(staging, 'vmlinuz'));
    const ko = new Map<string, string>();
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ko')) ko.set(e.name.slice(0, -3), p);
      }
    };
    for (const top of ['lib', 'usr/lib']) if (existsSync(join(x, top, 'modules'))) walk(join(x, top, 'modules'));
    for (const m of GUEST_MODULES) {
      const src = ko.get(m);
      if (!src) throw new Error(`${pkg} has no module ${m}.ko`);
      copyFileSync(src, join(staging, 'modules', `${m}.ko`));
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    return found;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
