import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cacheDir, packCpio, run } from './kernel-assets.js';
import { repoRoot } from './virtfs-process.js';

// pjdfstest is third-party: CI finds its tarball in the shared/ copy beside the repository, and
// it is built once into the cache (keyed by the tarball's hash), never into the repository.

export const TARBALL_ENV = 'VIRTFS_PJDFSTEST_TARBALL';
const defaultTarball = () => resolve(repoRoot, '..', 'shared', 'third-party', 'pjdfstest-85a8aea.tar.gz');

/** Where the suite sits in the guest: the scripts find the binary by walking up from their own directory. */
export const GUEST_DIR = '/pjdfstest';

export interface PjdfstestAssets {
  /** A gzipped cpio archive holding /pjdfstest/{pjdfstest,tests/} and /etc/{passwd,group}. */
  archive: string;
  /** Every test script, relative to tests/, e.g. "chmod/00.t", sorted. */
  files: string[];
}

/**
 * Two lines of the suite assume tools busybox lacks. Each edit must find its text, so a different
 * tarball fails loudly instead of running unpatched.
 */
const PATCHES: { file: string; from: string; to: string; count: number }[] = [
  // namegen: busybox has md5sum, not openssl; md5sum prints "HASH  -", so take the first field.
  { file: 'tests/misc.sh', from: "openssl md5 | awk '{print $NF}'", to: "md5sum | awk '{print $1}'", count: 2 },
  // The file system type only selects platform cases. EXT4 is what the suite would see on a Linux
  // ext4 host; besides FreeBSD/ZFS-only cases, it only turns on rename/22.t's "rename updates
  // ctime", which Linux's ext4 and tmpfs both do, and so does a server passing renames through.
  { file: 'tests/conf', from: "fs=`df -PT . | tail -1 | awk '{print toupper($2)}'`", to: 'fs="EXT4"', count: 1 },
];

/**
 * utimensat/06.t and 07.t look up `nobody` by name (the other scripts use numbers); busybox's
 * `id` reads these files. 65534 is the number the other scripts use for an unprivileged user.
 */
const PASSWD = 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnogroup:x:65533:\nnobody:x:65534:\n';

export function pjdfstestTarball(): string {
  const path = process.env[TARBALL_ENV] ?? defaultTarball();
  if (!existsSync(path)) {
    throw new Error(`pjdfstest tarball not found at ${path}: put shared/third-party/ beside the repository, or set ${TARBALL_ENV} to the tarball's path`);
  }
  return path;
}

/** Build the suite (once per tarball and recipe) and return its guest archive and script list. */
export function pjdfstestAssets(): PjdfstestAssets {
  const tarball = pjdfstestTarball();
  const key = createHash('sha256').update(readFileSync(tarball)).update(JSON.stringify(PATCHES)).update(PASSWD).update(GROUP).digest('hex').slice(0, 16);
  const dir = join(cacheDir(), `pjdfstest-${key}`);
  if (!existsSync(join(dir, 'pjdfstest.cpio.gz'))) build(tarball, dir);
  return { archive: join(dir, 'pjdfstest.cpio.gz'), files: listTests(join(dir, 'root', GUEST_DIR.slice(1), 'tests')) };
}

function build(tarball: string, dir: string): void {
  const work = mkdtempSync(join(tmpdir(), 'virtfs-pjdfstest-'));
  // Staged beside its final place, so the rename cannot cross file systems and a concurrent
  // build (the test and the standalone script) cannot see half of it.
  const staging = `${dir}.${process.pid}.tmp`;
  try {
    run('tar', ['-xzf', tarball, '-C', work]);
    const tops = readdirSync(work);
    if (tops.length !== 1) throw new Error(`${tarball} should hold one top directory, holds ${tops.join(', ')}`);
    const src = join(work, tops[0]!);
    run('autoreconf', ['-ifs'], { cwd: src });
    run('sh', ['./configure'], { cwd: src });
    // Static: the guest is a busybox initramfs with no C library.
    run('make', ['LDFLAGS=-static'], { cwd: src });
    for (const p of PATCHES) {
      const path = join(src, p.file);
      const text = readFileSync(path, 'utf8');
      const found = text.split(p.from).length - 1;
      if (found !== p.count) throw new Error(`${p.file}: expected ${p.count} × ${JSON.stringify(p.from)}, found ${found}`);
      writeFileSync(path, text.split(p.from).join(p.to));
    }
    rmSync(staging, { recursive: true, force: true });
    const suite = join(staging, 'root', GUEST_DIR.slice(1));
    mkdirSync(join(staging, 'root', 'etc'), { recursive: true });
    mkdirSync(suite, { recursive: true });
    copyFileSync(join(src, 'pjdfstest'), join(suite, 'pjdfstest'));
    cpSync(join(src, 'tests'), join(suite, 'tests'), { recursive: true });
    writeFileSync(join(staging, 'root', 'etc', 'passwd'), PASSWD);
    writeFileSync(join(staging, 'root', 'etc', 'group'), GROUP);
    packCpio(join(staging, 'root'), join(staging, 'pjdfstest.cpio.gz'));
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}

function listTests(testsDir: string): string[] {
  const files: string[] = [];
  for (const d of readdirSync(testsDir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    for (const f of readdirSync(join(testsDir, d.name))) if (f.endsWith('.t')) files.push(`${d.name}/${f}`);
  }
  return files.sort();
}
