import { spawn } from 'node:child_process';
import { chownSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The ordinary host user the Debian-on-virtfs tests run virtfs as. */
export const NOBODY = 65534;
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** nobody's own cache (its home is /nonexistent); kept between runs like a user's ~/.cache. */
export const NOBODY_CACHE = `/var/tmp/virtfs-test-cache-${NOBODY}`;

export interface Run {
  status: number | null;
  output: string;
}

/** Run the virtfs CLI as nobody, collecting everything it (and its guest's console) prints. */
export function virtfsAsNobody(args: string[], timeoutMs = 5 * 60_000, onOutput?: (s: string) => void): Promise<Run> {
  mkdirSync(NOBODY_CACHE, { recursive: true });
  chownSync(NOBODY_CACHE, NOBODY, NOBODY);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [main, ...args], {
      uid: NOBODY,
      gid: NOBODY,
      cwd: '/',
      env: { PATH: process.env.PATH, VIRTFS_CACHE: NOBODY_CACHE, HOME: '/nonexistent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (c: Buffer) => {
      const s = c.toString('latin1');
      output += s;
      onOutput?.(s);
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}
