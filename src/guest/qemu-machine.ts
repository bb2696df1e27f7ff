import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { MissingToolError } from './host-tools.js';

export interface MachineOptions {
  kernel: string;
  initrd: string;
  /** Appended to the kernel command line. */
  append?: string;
  memoryMiB: number;
  cpus: number;
  /** The unix socket the guest's 10.0.2.100:564 reaches (QEMU connects to it at start). */
  socket: string;
  /** File the second serial port (the guest's /dev/ttyS1) writes to. */
  statusFile: string;
  /** The guest's console: this terminal, or a pipe the caller reads. */
  console: 'terminal' | 'pipe';
}

/**
 * KVM when this user can open /dev/kvm and the CPU offers virtualisation (vmx or svm): some VMs
 * have a /dev/kvm whose guests never run, and their CPUs show neither flag.
 */
export function canUseKvm(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'latin1'));
  } catch {
    return false;
  }
}

export function qemuArgs(o: MachineOptions): string[] {
  const kvm = canUseKvm();
  const onTerminal = o.console === 'terminal' && process.stdin.isTTY === true;
  return [
    ...(kvm ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
    '-m', String(o.memoryMiB), '-smp', String(o.cpus),
    '-nodefaults', '-no-reboot', '-display', 'none',
    // On a terminal, mon:stdio lets Ctrl-A X stop the machine; the console is ttyS0.
    '-serial', onTerminal ? 'mon:stdio' : 'stdio',
    '-serial', `file:${o.statusFile}`,
    '-kernel', o.kernel, '-initrd', o.initrd,
    // net.ifnames=0: udev would try to rename eth0, which carries the root filesystem, while it is up.
    '-append', `console=ttyS0 panic=-1 quiet net.ifnames=0${o.append ? ` ${o.append}` : ''}`,
    // restrict=on: the guest reaches nothing on the host or beyond but the forwarded address.
    '-netdev', `user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:564-unix:${o.socket}`,
    '-device', 'virtio-net-pci,netdev=net0',
  ];
}

/** Start the machine; resolves with its exit once it has powered off (or failed to start). */
export function startMachine(o: MachineOptions): { qemu: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const qemu = spawn('qemu-system-x86_64', qemuArgs(o), {
    stdio: o.console === 'terminal' ? ['inherit', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    qemu.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new MissingToolError('qemu-system-x86_64') : err));
    qemu.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { qemu, exited };
}
