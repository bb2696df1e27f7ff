import { closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The prepared export both servers serve; every row works in its own part of it. */
export interface Fixture {
  dir: string;
  /** Size of `big` and of the region `seq-write` cycles through. */
  seqSize: number;
}

export const TREE_DIRS = 100;
export const TREE_FILES_PER_DIR = 100;
export const WIDE_ENTRIES = 10_000;
export const SMALL_FILE = 4096;

/** `tree/dNN/fNN`: the 10,000-file tree that `stat` and `open-read-4k` pick from. */
export function treePath(i: number): [string, string, string] {
  const d = Math.floor(i / TREE_FILES_PER_DIR);
  const f = i % TREE_FILES_PER_DIR;
  return ['tree', `d${String(d).padStart(2, '0')}`, `f${String(f).padStart(2, '0')}`];
}

export const TREE_SIZE = TREE_DIRS * TREE_FILES_PER_DIR;

/**
 * The parts of the export: `tree/` (10,000 files of 4 KiB in 100 directories), `wide/` (one
 * directory of 10,000 empty files), `big` (seqSize bytes of data, not a hole, so reads touch real
 * pages) and `seqw` (the file seq-write overwrites, as large as `big`, so every measurement
 * overwrites allocated blocks rather than the first one extending the file). `scratch/`, where
 * creating rows work, is always there and emptied each time.
 */
export type FixturePart = 'tree' | 'wide' | 'big' | 'seqw';

/** Build the parts the rows need, reusing what an earlier run left (20,000 files take seconds). */
export function prepareFixture(dir: string, seqSize: number, parts: ReadonlySet<FixturePart>): Fixture {
  mkdirSync(dir, { recursive: true });
  if (parts.has('tree')) prepareTree(dir);
  if (parts.has('wide')) prepareWide(join(dir, 'wide'));
  for (const part of ['big', 'seqw'] as const) {
    const file = join(dir, part);
    if (parts.has(part) && (!existsSync(file) || statSync(file).size !== seqSize)) writeData(file, seqSize);
  }
  rmSync(join(dir, 'scratch'), { recursive: true, force: true });
  mkdirSync(join(dir, 'scratch'));
  return { dir, seqSize };
}

function prepareTree(dir: string): void {
  const content = Buffer.alloc(SMALL_FILE, 'x');
  for (let i = 0; i < TREE_SIZE; i++) {
    const p = join(dir, ...treePath(i));
    if (i % TREE_FILES_PER_DIR === 0) mkdirSync(join(p, '..'), { recursive: true });
    if (!existsSync(p)) writeFileSync(p, content);
  }
}

function prepareWide(wide: string): void {
  mkdirSync(wide, { recursive: true });
  if (readdirSync(wide).length === WIDE_ENTRIES) return;
  for (let i = 0; i < WIDE_ENTRIES; i++) writeFileSync(join(wide, `entry-with-a-typical-name-${String(i).padStart(5, '0')}.c`), '');
}

/**
 * Write `path`'s dirty pages to disk and wait: a row that leaves a gigabyte dirty would otherwise
 * hand its writeback to whatever is measured next.
 */
export function settle(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeData(path: string, size: number): void {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const fd = openSync(path, 'w');
  try {
    for (let at = 0; at < size; at += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
  } finally {
    closeSync(fd);
  }
}
