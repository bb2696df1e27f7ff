import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, runTool } from './host-tools.js';

/** The version of `pkg` the host's apt would install, e.g. "1:1.35.0-4+b3". */
export function candidateVersion(pkg: string): string {
  const out = runTool('apt-cache', ['policy', pkg]);
  const m = /Candidate:\s*(\S+)/.exec(out);
  if (!m || m[1] === '(none)') throw new Error(`apt knows no package ${pkg} (run apt-get update, or add the Debian archive to apt's sources)`);
  return m[1]!;
}

/**
 * Download `spec` (NAME or NAME=VERSION) with the host's apt and unpack its files (no maintainer
 * scripts) into a fresh directory `into` inside `work`, which must be a new directory of the
 * caller's, on the same filesystem as where the result goes. Needs no root.
 */
export function fetchAndUnpack(spec: string, work: string, into: string): string {
  chmodSync(work, 0o777); // apt-get download drops to the _apt user when it runs as root
  runTool('apt-get', ['download', '-q', spec], { cwd: work });
  const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${spec} produced no .deb`);
  const out = join(work, into);
  runTool('dpkg-deb', ['-x', join(work, deb), out]);
  return out;
}

/**
 * `pkg` from the host's apt sources, unpacked into the cache and kept there by name and version.
 */
export function unpackedPackage(pkg: string): string {
  const version = candidateVersion(pkg);
  const dir = join(cacheDir(), 'packages', `${pkg}_${version.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
  if (existsSync(dir)) return dir;
  mkdirSync(join(cacheDir(), 'packages'), { recursive: true, mode: 0o755 });
  // Staged beside its final place, so the rename never crosses filesystems.
  const work = mkdtempSync(join(cacheDir(), 'packages', '.fetch-'));
  try {
    renameSync(fetchAndUnpack(`${pkg}=${version}`, work, 'root'), dir);
    return dir;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
