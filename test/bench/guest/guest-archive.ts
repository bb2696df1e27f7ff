import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, copyWithLibraries, packCpio, run } from '../../kernel/kernel-assets.js';
import type { SourceTree } from './source-tree.js';

/** Where the guest finds the tarball; the other files are on its PATH. */
export const GUEST_TARBALL = '/bench/src.tar';

// Compiled code runs from dist/test/bench/guest; the C source stays beside this file's source.
const timerSource = fileURLToPath(new URL('../../../../test/bench/guest/now-ns.c', import.meta.url));
const GIT = '/usr/bin/git';

/**
 * The extra initramfs archive of the in-guest bench: the source tree's tarball, the host's git
 * with its shared libraries (busybox has no git; host and guest are both Debian 12, and the host
 * needs git anyway to build the repository), and a static nanosecond timer. Made once per
 * tarball, git binary and timer source, in the cache.
 */
export function guestBenchArchive(tree: SourceTree): string {
  if (!existsSync(GIT)) throw new Error('git is not installed (apt-get install git): the in-guest bench runs `git status` with it');
  const key = createHash('sha256').update(tree.tarball).update(readFileSync(GIT)).update(readFileSync(timerSource)).digest('hex').slice(0, 16);
  const out = join(cacheDir(), 'guest-bench', `archive-${key}.cpio.gz`);
  if (existsSync(out)) return out;
  const root = mkdtempSync(join(cacheDir(), 'guest-bench', '.archive-'));
  try {
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'bench'), { mode: 0o755 });
    copyFileSync(tree.tarball, join(root, GUEST_TARBALL));
    mkdirSync(join(root, 'bin'), { mode: 0o755 });
    run('cc', ['-O2', '-static', '-o', join(root, 'bin', 'now-ns'), timerSource]);
    copyWithLibraries(GIT, root);
    const tmp = `${out}.${process.pid}.tmp`;
    packCpio(root, tmp);
    chmodSync(tmp, 0o644);
    renameSync(tmp, out);
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
