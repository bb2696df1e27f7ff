import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface VirtfsProcess {
  port: number;
  /** The process started: the server itself (under fdLimit the shell execs it); for npm start, npm's. */
  pid: number;
  stdout(): string;
  stderr(): string;
  stop(): Promise<number | null>;
}

/** A server run directly (exec'd through a shell at most), whose own /proc/PID/status can be read. */
export interface DirectVirtfsProcess extends VirtfsProcess {
  pid: number;
}

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The repository root (compiled tests run from dist/test/kernel). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Run `virtfs serve` exactly as a user would, on a free loopback port, and read the port back
 * from the mount line it prints.
 */
export async function startVirtfs(dir: string, args: string[] = [], opts: { fdLimit?: number; nodeArgs?: string[] } = {}): Promise<DirectVirtfsProcess> {
  const argv = [process.execPath, ...(opts.nodeArgs ?? []), main, 'serve', '--listen', 'tcp:127.0.0.1:0', ...args, dir];
  // With fdLimit, through a shell that lowers both descriptor limits first (as `ulimit -n` does).
  const p =
    opts.fdLimit === undefined
      ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `ulimit -Sn ${opts.fdLimit} && ulimit -Hn ${opts.fdLimit} && exec "$@"`, 'sh', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The shell execs node, so p.pid is the server's either way.
  return { ...(await watch(p, () => p.kill('SIGTERM'))), pid: p.pid! };
}

/**
 * Run the README's `npm start` itself in the repository (it serves ./share there), with `extra`
 * appended to its command line. npm runs the server through a shell, so the whole process group
 * is signalled to stop it.
 */
export function startNpmStart(extra: string[]): Promise<VirtfsProcess> {
  const p = spawn('npm', ['start', '--silent', '--', ...extra], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  return watch(p, () => process.kill(-p.pid!, 'SIGTERM'));
}

function watch(p: ChildProcess, terminate: () => void): Promise<VirtfsProcess> {
  let out = '';
  let err = '';
  p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      terminate();
      reject(new Error(`virtfs did not print its mount line within 15 s; stderr:\n${err}`));
    }, 15_000);
    const onData = () => {
      const m = /port=(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      p.stdout!.off('data', onData);
      resolve({
        port: Number(m[1]),
        pid: p.pid!,
        stdout: () => out,
        stderr: () => err,
        stop: async () => {
          terminate();
          return exited;
        },
      });
    };
    p.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`virtfs exited with ${code} before listening; stderr:\n${err}`));
    });
  });
}
