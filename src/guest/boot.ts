import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { SecurityModelName } from '../backend/local/security-model.js';
import { raiseFdLimit } from '../backend/local/sys.js';
import { startServer } from '../index.js';
import { baseInitramfs, bootConfigArchive } from './boot-initramfs.js';
import { guestKernel, type GuestKernel } from './guest-kernel.js';
import { startMachine } from './qemu-machine.js';

export interface BootOptions {
  /** The directory that becomes the guest's /. */
  root: string;
  /** Run this in the guest's root and power off, instead of booting its /sbin/init. */
  command?: readonly string[];
  memoryMiB: number;
  cpus: number;
  /** A vmlinuz with virtio-net and 9p built in, instead of Debian's (fetched with apt). */
  kernel?: string;
  append?: string;
  msize: number;
  /** The 9p client's cache mode for the root: mmap (the default) keeps shared writable mmap working. */
  cache: string;
  security: SecurityModelName;
  console: 'terminal' | 'pipe';
  log: Logger;
  /** Called with qemu's console output when console is 'pipe'. */
  onConsole?: (chunk: Buffer) => void;
}

export interface BootResult {
  /** The command's exit status; for a full boot, 0 when the system powered itself off. */
  status: number;
  /** Set when the guest stopped without reporting a status (crashed, killed, never mounted). */
  problem?: string;
}

/**
 * Serve `root` from this process on a private unix socket and boot a guest whose root filesystem
 * it is. Nothing but QEMU (started as this user) can reach the socket: it sits in a 0700 directory.
 */
export async function bootGuest(o: BootOptions): Promise<BootResult> {
  const root = resolve(o.root);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`${o.root}: no such directory`);
  const kernel: GuestKernel = o.kernel ? { pkg: o.kernel, vmlinuz: resolve(o.kernel), modules: '' } : guestKernel();
  if (!existsSync(kernel.vmlinuz)) throw new Error(`${o.kernel}: no such kernel image`);
  const base = baseInitramfs(kernel);
  raiseFdLimit();
  const work = mkdtempSync(join(tmpdir(), 'virtfs-boot-'));
  const server = await startServer({
    root,
    listen: `unix:${join(work, '9p.sock')}`,
    security: { model: o.security },
    log: o.log,
  });
  try {
    const initrd = join(work, 'initrd');
    const mountOptions = `msize=${o.msize},cache=${o.cache},posixacl`;
    writeFileSync(initrd, Buffer.concat([readFileSync(base), bootConfigArchive({ mountOptions, command: o.command })]));
    const statusFile = join(work, 'status');
    writeFileSync(statusFile, '');
    const machine = startMachine({
      kernel: kernel.vmlinuz, initrd, append: o.append, memoryMiB: o.memoryMiB, cpus: o.cpus,
      socket: join(work, '9p.sock'), statusFile, console: o.console,
    });
    if (o.console === 'pipe') {
      machine.qemu.stdout?.on('data', (c: Buffer) => o.onConsole?.(c));
      machine.qemu.stderr?.on('data', (c: Buffer) => o.onConsole?.(c));
    }
    const stop = () => machine.qemu.kill('SIGTERM');
    process.once('SIGTERM', stop);
    const exit = await machine.exited.finally(() => process.off('SIGTERM', stop));
    const status = readFileSync(statusFile, 'latin1');
    const failed = /^fail (.*)$/m.exec(status);
    if (failed) return { status: 1, problem: `the guest could not boot: ${failed[1]}` };
    const reported = /exit (\d+)/.exec(status);
    if (o.command) {
      if (reported) return { status: Number(reported[1]) };
      return { status: 1, problem: `the guest stopped without reporting the command's exit status (qemu ${exit.signal ? `killed by ${exit.signal}` : `exited ${exit.code}`})` };
    }
    if (exit.code === 0) return { status: 0 };
    return { status: 1, problem: `qemu ${exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`}` };
  } finally {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }
}
