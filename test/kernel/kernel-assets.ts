import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_INIT } from './guest-init.js';
import { GUEST_MODULES as MODULES, guestKernel } from '../../src/guest/guest-kernel.js';
import { cacheDir } from '../../src/guest/host-tools.js';

// Everything a guest needs is fetched or built once into a cache outside the repository
// (VIRTFS_CACHE, default ~/.cache/virtfs), never committed.


/** Host programs copied into the guest with their shared libraries (busybox has no xattr or ACL tools). */
const GUEST_PROGRAMS = ['/usr/bin/getfattr', '/usr/bin/setfattr', '/usr/bin/getfacl', '/usr/bin/setfacl'];

/** Small C programs of our own (test/kernel/guest-tools/NAME.c), built static into the guest's /bin. */
const GUEST_TOOLS = ['mmap-write'];
const toolsDir = new URL('../../../test/kernel/guest-tools/', import.meta.url);
const toolSource = (name: string) => readFileSync(new URL(`${name}.c`, toolsDir), 'utf8');

export interface GuestAssets {
  kernel: string;
  initramfs: string;
  kernelPackage: string;
}

export { cacheDir };

/** Run a host tool, turning "not installed" into the Debian package that provides it. */
export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is not installed (${hint(cmd)})`);
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? err}`);
  }
}

function hint(cmd: string): string {
  const pkgs: Record<string, string> = {
    'qemu-system-x86_64': 'apt-get install qemu-system-x86',
    cpio: 'apt-get install cpio',
    cc: 'apt-get install gcc libc6-dev',
    getfattr: 'apt-get install attr',
    autoreconf: 'apt-get install autoconf automake',
    make: 'apt-get install make',
    tar: 'apt-get install tar',
    'apt-get': 'a Debian host is needed',
    'apt-cache': 'a Debian host is needed',
    'dpkg-deb': 'a Debian host is needed',
  };
  return pkgs[cmd] ?? 'install it';
}

/** Pack a directory tree as a gzipped newc cpio archive. */
export function packCpio(root: string, out: string): void {
  const list = run('find', ['.', '-mindepth', '1'], { cwd: root });
  execFileSync('sh', ['-c', 'cpio -o -H newc --quiet | gzip -1 > "$0"', out], { cwd: root, input: list, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** busybox, the modules, the xattr tools and /init: built once per kernel and init script. */
function ensureBaseInitramfs(modulesDir: string, pkg: string): string {
  const hash = createHash('sha256').update(GUEST_INIT).update(MODULES.join(',')).update(GUEST_PROGRAMS.join(',')).update(pkg);
  for (const t of GUEST_TOOLS) hash.update(toolSource(t));
  const key = hash.digest('hex').slice(0, 16);
  const out = join(cacheDir(), `initramfs-${key}.cpio.gz`);
  if (existsSync(out)) return out;
  const root = mkdtempSync(join(tmpdir(), 'virtfs-initramfs-'));
  try {
    for (const d of ['bin', 'proc', 'sys', 'dev', 'mnt', 'tmp', 'lib/modules']) mkdirSync(join(root, d), { recursive: true });
    const busybox = '/usr/bin/busybox';
    if (!existsSync(busybox)) throw new Error('busybox is not installed (apt-get install busybox-static)');
    copyFileSync(busybox, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    for (const applet of run(busybox, ['--list']).split('\n').filter(Boolean)) {
      if (!existsSync(join(root, 'bin', applet))) symlinkSync('busybox', join(root, 'bin', applet));
    }
    for (const m of MODULES) copyFileSync(join(modulesDir, `${m}.ko`), join(root, 'lib', 'modules', `${m}.ko`));
    for (const prog of GUEST_PROGRAMS) {
      if (!existsSync(prog)) throw new Error(`${prog} is missing (apt-get install attr acl)`);
      copyWithLibraries(prog, root);
    }
    for (const t of GUEST_TOOLS) {
      run('cc', ['-O2', '-static', '-o', join(root, 'bin', t), fileURLToPath(new URL(`${t}.c`, toolsDir))]);
    }
    writeFileSync(join(root, 'init'), GUEST_INIT, { mode: 0o755 });
    const tmp = `${out}.${process.pid}.tmp`;
    packCpio(root, tmp);
    renameSync(tmp, out);
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Copy a dynamically linked program and every library ldd names (guest and host are both Debian 12). */
export function copyWithLibraries(prog: string, root: string): void {
  const place = (p: string) => {
    const dest = join(root, p);
    if (existsSync(dest)) return;
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(p, dest);
    chmodSync(dest, 0o755);
  };
  place(prog);
  for (const lib of run('ldd', [prog]).matchAll(/(\/\S+)/g)) place(lib[1]!);
}

/** Everything a guest boots from, fetching and building what the cache lacks. */
export function guestAssets(): GuestAssets {
  mkdirSync(cacheDir(), { recursive: true });
  const k = guestKernel();
  return { kernel: k.vmlinuz, initramfs: ensureBaseInitramfs(k.modules, k.pkg), kernelPackage: k.pkg };
}
