import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startVirtfs } from '../kernel/virtfs-process.js';

/** A 9P server process serving the bench directory on loopback. */
export interface ServerUnderTest {
  name: 'virtfs' | 'diod';
  port: number;
  /** The process doing the serving, whose /proc/PID/stat CPU times are charged to it. */
  pid: number;
  /** What Tattach must name: diod serves only the exports it was given, by path. */
  aname: string;
  stop(): Promise<void>;
}

/** `virtfs serve` exactly as a user starts it (defaults, msize 1 MiB), with `args` added. */
export async function startVirtfsServer(dir: string, args: string[] = []): Promise<ServerUnderTest> {
  const p = await startVirtfs(dir, args);
  return { name: 'virtfs', port: p.port, pid: p.pid, aname: dir, stop: async () => void (await p.stop()) };
}

/**
 * diod in the foreground, no munge authentication (-n), exporting `dir` alone. -N skips its
 * passwd/group lookups, so attaching as uid 0 needs no user database entry; as root, diod then
 * switches to the attaching user's ids per request as it always does. Its default worker pool
 * (16 threads) is kept.
 */
export async function startDiodServer(dir: string): Promise<ServerUnderTest> {
  const port = await freePort();
  // diod 1.0.24 sometimes crashes when the memory row closes its 64 connections at once, and it
  // raises its own core limit: the core (near 1 GB) would land in the working directory, the
  // repository. It runs in a directory of its own, removed when it stops.
  const cwd = mkdtempSync(join(tmpdir(), 'virtfs-bench-diod-'));
  const p = spawn('diod', ['-f', '-n', '-N', '-L', 'stderr', '-l', `127.0.0.1:${port}`, '-e', dir], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => p.on('exit', () => r())).finally(() => rmSync(cwd, { recursive: true, force: true }));
  const failed = new Promise<never>((_, reject) => p.on('error', reject));
  await Promise.race([waitForListener(port), failed, exited.then(() => Promise.reject(new Error(`diod exited: ${err}`)))]);
  return {
    name: 'diod',
    port,
    pid: p.pid!,
    aname: dir,
    stop: async () => {
      p.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Make sure diod can be run: installed already, or installed now with apt-get when running as
 * root on a Debian-like system. Otherwise throws one line saying how to install it.
 */
export async function ensureDiod(log: (line: string) => void): Promise<void> {
  if (await diodAvailable()) return;
  const how = 'install it with `apt-get install diod` (Debian/Ubuntu), or pass --no-diod to bench virtfs alone';
  if (process.getuid?.() !== 0) throw new Error(`diod is not installed: ${how}`);
  log('diod is not installed: apt-get install -y diod …');
  const r = spawnSync('apt-get', ['install', '-y', 'diod'], { stdio: ['ignore', process.stderr, process.stderr], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error || r.status !== 0 || !(await diodAvailable())) throw new Error(`diod is not installed and apt-get could not install it: ${how}`);
}

/** Whether diod is installed (`apt-get install diod` on Debian). */
export function diodAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('diod', ['--help'], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('exit', () => resolve(true));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** diod prints nothing when ready: poll until the port accepts a connection. */
async function waitForListener(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`diod did not listen on ${port} within 10 s`);
}
