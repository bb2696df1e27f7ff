import { execFile, execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where fetched packages, kernels and initramfs images are kept between runs (never in a
 * repository): VIRTFS_CACHE, else $XDG_CACHE_HOME/virtfs, else ~/.cache/virtfs. Everything made
 * there gets an explicit mode: a process that has started a server runs with umask 0, and a
 * kernel or initramfs another user could rewrite would give them the guest's root.
 */
export function cacheDir(): string {
  if (process.env.VIRTFS_CACHE) return process.env.VIRTFS_CACHE;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'virtfs');
}

/** The Debian package to install when a host tool is missing. */
const PROVIDERS: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'apt-get': 'apt (a Debian or Ubuntu host is needed)',
  'apt-cache': 'apt (a Debian or Ubuntu host is needed)',
  'dpkg-deb': 'dpkg (a Debian or Ubuntu host is needed)',
};

export class MissingToolError extends Error {
  constructor(readonly tool: string) {
    super(`${tool} is not installed (apt-get install ${PROVIDERS[tool] ?? tool})`);
  }
}

interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

function failure(cmd: string, args: readonly string[], err: unknown): Error {
  const e = err as { code?: string; stderr?: string | Buffer };
  if (e.code === 'ENOENT') return new MissingToolError(cmd);
  const said = String(e.stderr ?? '').trim().split('\n').slice(-3).join('; ');
  return new Error(`${cmd} ${args.join(' ')} failed${said ? `: ${said}` : ''}`);
}

/** Run a host tool to completion and return its output; a missing tool names its package. */
export function runTool(cmd: string, args: readonly string[], o: RunOptions = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20, ...o });
  } catch (err) {
    throw failure(cmd, args, err);
  }
}

/** runTool without blocking the event loop (a server may be running in this process). */
export function runToolAsync(cmd: string, args: readonly string[], o: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...o }, (err, stdout, stderr) => {
      if (err) reject(failure(cmd, args, Object.assign(err, { stderr })));
      else resolve(stdout);
    });
  });
}
