import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, MissingToolError, runTool } from '../../../src/guest/host-tools.js';

/**
 * The tree the in-guest rows untar, list, read, copy and `git status`: a git repository of
 * `files` small text files in nested directories, shaped like a source tree (a few hundred
 * directories, sizes from 64 B to 32 KiB, most under 8 KiB), the same bytes every time (a seeded
 * generator). Packed with its .git as one tarball, made once per shape into the cache.
 */
export interface SourceTree {
  /** The tarball: `src/` with `.git` and the files. */
  tarball: string;
  files: number;
  /** Directories under src/, src/ itself and .git's not counted. */
  dirs: number;
  /** Bytes of the files, .git not counted. */
  bytes: number;
}

/** Bumped when the generator changes, so a cached tarball of the old shape is not reused. */
const SHAPE_VERSION = 1;
const FILES_PER_DIR = 12;
const DIRS_PER_PARENT = 8;

/** The tarball for `files` files, from the cache or made now (needs git and tar on the host). */
export function sourceTree(files: number): SourceTree {
  const shape = layout(files);
  const dir = join(cacheDir(), 'guest-bench', `src-v${SHAPE_VERSION}-${files}`);
  const tarball = join(dir, 'src.tar');
  if (!existsSync(tarball)) build(shape, dir);
  return { tarball, files, dirs: shape.dirs.length, bytes: shape.files.reduce((n, f) => n + f.size, 0) };
}

interface Layout {
  dirs: string[];
  files: { path: string; size: number; seed: number }[];
}

/** Directories filled breadth-first, FILES_PER_DIR files each, DIRS_PER_PARENT children each. */
function layout(files: number): Layout {
  const rand = mulberry32(0x9e3779b9);
  const dirs: string[] = [];
  const out: Layout['files'] = [];
  const queue = [''];
  while (out.length < files) {
    const parent = queue.shift()!;
    for (let i = 0; i < DIRS_PER_PARENT; i++) {
      const d = `${parent}d${i}/`;
      dirs.push(d);
      queue.push(d);
      for (let f = 0; f < FILES_PER_DIR && out.length < files; f++) {
        // Log-uniform over 64 B .. 32 KiB: many small files, a few large ones, as in source trees.
        const size = Math.round(64 * 2 ** (rand() * 9));
        out.push({ path: `${d}f${f}.c`, size, seed: Math.floor(rand() * 2 ** 32) });
      }
      if (out.length >= files) break;
    }
  }
  return { dirs, files: out };
}

function build(shape: Layout, dir: string): void {
  mkdirSync(join(cacheDir(), 'guest-bench'), { recursive: true, mode: 0o755 });
  // Staged beside its final place, so a concurrent build never sees half of it.
  const work = mkdtempSync(`${dir}.tmp-`);
  try {
    chmodSync(work, 0o755);
    const src = join(work, 'src');
    mkdirSync(src, { mode: 0o755 });
    for (const d of shape.dirs) mkdirSync(join(src, d), { mode: 0o755 });
    for (const f of shape.files) writeFileSync(join(src, f.path), text(f.size, f.seed), { mode: 0o644 });
    // A fixed identity and date, and no template hooks: the same repository every time.
    const env = {
      ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.invalid', GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@example.invalid', GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z',
    };
    const git = (...args: string[]) => gitIn(src, args, env);
    git('init', '-q', '--template=', '-b', 'main');
    git('add', '-A');
    git('commit', '-q', '-m', 'source tree for the in-guest bench');
    // One pack instead of a loose object per blob and tree: .git stays a handful of files.
    git('repack', '-q', '-a', '-d');
    git('prune');
    runTool('tar', ['--sort=name', '--mtime=2020-01-01 00:00Z', '--owner=0', '--group=0', '--numeric-owner', '-cf', join(work, 'src.tar'), '-C', work, 'src']);
    rmSync(src, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function gitIn(cwd: string, args: string[], env: NodeJS.ProcessEnv): void {
  try {
    runTool('git', args, { cwd, env });
  } catch (err) {
    if (err instanceof MissingToolError) throw new Error('git is not installed (apt-get install git): the in-guest bench builds its repository with it');
    throw err;
  }
}

const WORDS = ['int', 'return', 'static', 'struct', 'if', 'else', 'for', 'while', 'const', 'void', 'size_t', 'buf', 'len', 'err', 'node', 'fid', 'qid', 'msize', '(', ')', '{', '}', ';', '=', '+', '0', '1'];

/** `size` bytes of code-like text from `seed`: compresses like source, differs per file. */
function text(size: number, seed: number): string {
  const rand = mulberry32(seed);
  let s = '';
  while (s.length < size) {
    let line = '';
    const words = 2 + Math.floor(rand() * 10);
    for (let i = 0; i < words; i++) line += `${WORDS[Math.floor(rand() * WORDS.length)]} `;
    s += `${line.trimEnd()}\n`;
  }
  return `${s.slice(0, size - 1)}\n`;
}

/** A small seeded generator (mulberry32): the tree must be the same bytes on every machine. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
