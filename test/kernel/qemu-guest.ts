import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestAssets, packCpio } from './kernel-assets.js';

export interface GuestOptions {
  /** The host's loopback port the guest's 10.0.2.100:564 is forwarded to. */
  port: number;
  /** Shell run in the mounted export (see guest-init.ts for check/expect_eq). */
  script: string;
  /** Appended to the mount options, e.g. ",cache=mmap". */
  mountOptions?: string;
  /**
   * A whole mount command to run instead (mounting on /mnt). With it the guest gets plain user
   * networking, where 10.0.2.2 is the host's loopback, as a user's QEMU guest would.
   */
  mountCommand?: string;
  timeoutMs?: number;
  memoryMiB?: number;
  /** More qemu arguments, e.g. QEMU's own 9p server (`-fsdev ... -device virtio-9p-pci ...`). */
  qemuArgs?: string[];
  /** Virtual CPUs (default 1: under software emulation each one costs a host core). */
  smp?: number;
  /**
   * Further gzipped cpio archives (e.g. a test suite built into the cache) unpacked over the base
   * initramfs, before the per-run files.
   */
  archives?: string[];
  /**
   * More forwards on the same restricted network: guest 10.0.2.100:guestPort reaches the host's
   * loopback hostPort, each a single stream like the main one (the guest mounts each once).
   */
  forwards?: { guestPort: number; hostPort: number }[];
  /** Called with the console's output as it arrives (e.g. to sample a server at a marker line). */
  onOutput?: (text: string) => void;
  /** Called with qemu's pid once it is started (e.g. to read the guest's CPU time). */
  onStart?: (qemuPid: number) => void;
}

export interface GuestResult {
  console: string;
  checks: Map<string, { ok: boolean; detail: string }>;
  /** `VALUE NAME TEXT` lines: values the host compares. */
  values: Map<string, string>;
  mounted: boolean;
  finished: boolean;
  timedOut: boolean;
}

/**
 * Boot Debian's stock kernel under qemu (software emulation) with a busybox initramfs, mount the
 * server at `port` with the kernel's 9p client over trans=tcp, run `script`, power off. The guest
 * reaches nothing but the one forwarded address (restrict=on).
 */
export async function runGuest(o: GuestOptions): Promise<GuestResult> {
  const assets = guestAssets();
  const timeoutMs = o.timeoutMs ?? 5 * 60_000;
  const work = mkdtempSync(join(tmpdir(), 'virtfs-guest-'));
  try {
    // The per-run files go in a second archive appended to the cached base: the kernel unpacks
    // concatenated archives in order.
    const extra = join(work, 'extra');
    mkdirSync(extra);
    writeFileSync(join(extra, 'workload.sh'), o.script);
    const watchdog = Math.max(30, Math.floor(timeoutMs / 1000) - 15);
    const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
    writeFileSync(join(extra, 'config'), `MOUNT_OPTS=${quote(o.mountOptions ?? '')}\nMOUNT_CMD=${quote(o.mountCommand ?? '')}\nWATCHDOG=${watchdog}\n`);
    packCpio(extra, join(work, 'extra.cpio.gz'));
    const initrd = join(work, 'initrd.gz');
    const parts = [assets.initramfs, ...(o.archives ?? []), join(work, 'extra.cpio.gz')];
    writeFileSync(initrd, Buffer.concat(parts.map((p) => readFileSync(p))));
    const args = [
      '-accel', 'tcg', '-m', String(o.memoryMiB ?? 512), '-smp', String(o.smp ?? 1),
      '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio',
      '-kernel', assets.kernel, '-initrd', initrd,
      '-append', 'console=ttyS0 panic=-1 quiet',
      '-netdev', o.mountCommand ? 'user,id=n0' : restrictedNetdev(o.port, o.forwards ?? []),
      '-device', 'virtio-net-pci,netdev=n0',
      ...(o.qemuArgs ?? []),
    ];
    const { output, timedOut } = await runQemu(args, timeoutMs, o);
    return parseConsole(output, timedOut);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The guest's only network: 10.0.2.100:564 to the server, and any further forwards beside it. */
function restrictedNetdev(port: number, forwards: readonly { guestPort: number; hostPort: number }[]): string {
  const fwd = [{ guestPort: 564, hostPort: port }, ...forwards].map((f) => `guestfwd=tcp:10.0.2.100:${f.guestPort}-tcp:127.0.0.1:${f.hostPort}`);
  return ['user', 'id=n0', 'restrict=on', ...fwd].join(',');
}

function runQemu(args: string[], timeoutMs: number, watch: Pick<GuestOptions, 'onOutput' | 'onStart'>): Promise<{ output: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (q.pid !== undefined) watch.onStart?.(q.pid);
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      q.kill('SIGKILL');
    }, timeoutMs);
    q.stdout.on('data', (c: Buffer) => {
      chunks.push(c);
      watch.onOutput?.(c.toString('latin1'));
    });
    q.stderr.on('data', (c: Buffer) => chunks.push(c));
    q.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT' ? new Error('qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)') : err);
    });
    q.on('close', () => {
      clearTimeout(timer);
      resolve({ output: Buffer.concat(chunks).toString('latin1'), timedOut });
    });
  });
}

export function parseConsole(output: string, timedOut: boolean): GuestResult {
  const lines = output.split(/\r?\n/);
  const checks = new Map<string, { ok: boolean; detail: string }>();
  const values = new Map<string, string>();
  for (const line of lines) {
    const c = /CHECK (ok|fail) (\S+) ?(.*)$/.exec(line);
    if (c) checks.set(c[2]!, { ok: c[1] === 'ok', detail: c[3] ?? '' });
    const v = /VALUE (\S+) (.*)$/.exec(line);
    if (v) values.set(v[1]!, v[2]!.trim());
  }
  return {
    console: output,
    checks,
    values,
    mounted: output.includes('GUEST MOUNTED'),
    finished: output.includes('GUEST FINISHED'),
    timedOut: timedOut || output.includes('GUEST WATCHDOG'),
  };
}
