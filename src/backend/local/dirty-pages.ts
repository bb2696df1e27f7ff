import { readFile } from 'node:fs/promises';
import * as sys from './sys.js';

/**
 * Whether a small buffered write may run on the event loop (sys.setWritesInline). Copying 4 KiB
 * into the page cache costs far less than the thread pool's hop, but the kernel makes a writer
 * sleep (balance_dirty_pages, up to 200 ms a time) once dirty and under-writeback pages pass the
 * "freerun" ceiling, halfway between the background and the foreground dirty thresholds, and a
 * memory cgroup near its limit makes it wait on reclaim. So writes run inline only while a fresh
 * reading finds every domain the server writes in (the machine, and each memory cgroup it is in)
 * below half that ceiling, and only for as many bytes as are left below it (the headroom): the
 * server's own writes then cannot carry a domain past half its ceiling between two readings,
 * however small the machine. Otherwise, and with no reading, writes keep the pool.
 *
 * The reading is taken only while writes come, asynchronously: a write finding it older than
 * {@link REFRESH_MS}, or the headroom spent, asks for another (keeping the old one meanwhile if
 * any headroom is left). A reading is trusted for {@link STALE_MS}: then a timer turns inline
 * writes off (the addon's few writes of its own, such as mapped-file's metadata, do not ask), and
 * a write finding it that old goes to the pool.
 */
export class DirtyPageGauge {
  private readAt = -Infinity;
  private refreshing = false;
  private calm = false;
  /** Bytes the server may still write before the reading's domains reach half their ceiling. */
  private headroom = 0;
  private expiry: NodeJS.Timeout | null = null;

  constructor(
    /** The headroom in bytes now (0 or less: none). */
    private readonly read: () => Promise<number>,
    private readonly apply: (calm: boolean) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Before each write of `bytes`: count them, refresh the reading if it is old or spent, and stop inline writes if it is stale or spent. */
  poke(bytes = 0): void {
    this.headroom -= bytes;
    const age = this.now() - this.readAt;
    const spent = this.headroom <= 0;
    if (age < REFRESH_MS && !spent) return;
    if (age >= STALE_MS || spent) this.set(false);
    if (this.refreshing) return;
    this.refreshing = true;
    this.read().then(
      (headroom) => this.settle(headroom),
      () => this.settle(0),
    );
  }

  private settle(headroom: number): void {
    this.refreshing = false;
    this.readAt = this.now();
    this.headroom = headroom;
    const calm = headroom > 0;
    this.set(calm);
    if (!calm) return;
    if (this.expiry) this.expiry.refresh();
    else this.expiry = setTimeout(() => this.set(false), STALE_MS).unref();
  }

  private set(calm: boolean): void {
    if (calm === this.calm) return;
    this.calm = calm;
    this.apply(calm);
  }
}

/** A reading this old is refreshed. */
export const REFRESH_MS = 100;
/** A reading this old is not trusted. */
export const STALE_MS = 1000;

/** vm.dirty_* as /proc/sys/vm has them: a *_bytes setting, when not 0, overrides its *_ratio. */
export interface DirtyKnobs {
  ratio: number;
  backgroundRatio: number;
  bytes: number;
  backgroundBytes: number;
}

/** One domain's memory in bytes: what it may fill with dirty pages, and how many it holds now. */
export interface DirtyDomain {
  /** Free memory plus file pages (the kernel's dirtyable memory). */
  dirtyable: number;
  /** Dirty plus under-writeback file pages. */
  dirty: number;
}

/**
 * The freerun ceiling of a domain in bytes, as mm/page-writeback.c computes it: the foreground
 * and background thresholds from the knobs (a background threshold at or above the foreground
 * one is taken as half of it), and the point halfway between them.
 */
export function freerunCeiling(dirtyable: number, knobs: DirtyKnobs): number {
  const thresh = knobs.bytes > 0 ? knobs.bytes : (dirtyable * knobs.ratio) / 100;
  let background = knobs.backgroundBytes > 0 ? knobs.backgroundBytes : (dirtyable * knobs.backgroundRatio) / 100;
  if (background >= thresh) background = thresh / 2;
  return (thresh + background) / 2;
}

/** Bytes that may still be dirtied before some domain is half way to its freerun ceiling (0 or less: none). */
export function headroomOf(domains: readonly DirtyDomain[], knobs: DirtyKnobs): number {
  return Math.min(...domains.map((d) => freerunCeiling(d.dirtyable, knobs) / 2 - d.dirty));
}

/** Fields of a "name value" file (/proc/vmstat, memory.stat). */
export function parseFields(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, value] = line.split(' ');
    if (name && value !== undefined) out.set(name, Number(value));
  }
  return out;
}

const PAGE = 4096;

/** The machine's domain from /proc/vmstat (counts in pages). */
export function machineDomain(vmstat: Map<string, number>, pageSize = PAGE): DirtyDomain | null {
  const [free, inactive, active, dirty, writeback] = ['nr_free_pages', 'nr_inactive_file', 'nr_active_file', 'nr_dirty', 'nr_writeback'].map((k) => vmstat.get(k));
  if ([free, inactive, active, dirty, writeback].some((v) => v === undefined || !Number.isFinite(v))) return null;
  return { dirtyable: (free! + inactive! + active!) * pageSize, dirty: (dirty! + writeback!) * pageSize };
}

/**
 * A memory cgroup's domain: its room below its limit plus the file pages it holds, and its dirty
 * pages; null if it has no limit. v2 names its files memory.max/high/current and file,
 * file_dirty, file_writeback; v1 memory.limit_in_bytes (as hierarchical_memory_limit, which
 * counts its ancestors), usage_in_bytes and cache, dirty, writeback.
 */
export function cgroupDomain(limit: number, usage: number, stat: Map<string, number>, v2: boolean): DirtyDomain | null {
  if (!Number.isFinite(limit) || limit >= 2 ** 62) return null;
  const [file, dirty, writeback] = (v2 ? ['file', 'file_dirty', 'file_writeback'] : ['cache', 'dirty', 'writeback']).map((k) => stat.get(k) ?? 0);
  return { dirtyable: Math.max(0, limit - usage) + file!, dirty: dirty! + writeback! };
}

/** A memory cgroup directory the server's memory is charged to (or counted under), by version. */
interface Memcg {
  dir: string;
  v2: boolean;
}

/** The memory cgroups of this process: under v2 its own and each ancestor's, under v1 its own. */
export function memcgsOf(procSelfCgroup: string, root = '/sys/fs/cgroup'): Memcg[] {
  const lines = procSelfCgroup.split('\n').map((l) => l.split(':'));
  const v1 = lines.find((f) => f.length >= 3 && f[1]!.split(',').includes('memory'));
  if (v1) return [{ dir: `${root}/memory${v1.slice(2).join(':')}`, v2: false }];
  const v2 = lines.find((f) => f[0] === '0' && f[1] === '');
  if (!v2) return [];
  const out: Memcg[] = [];
  for (let p = v2.slice(2).join(':'); p !== '/' && p !== ''; p = p.slice(0, p.lastIndexOf('/')) || '/') out.push({ dir: `${root}${p}`, v2: true });
  return out;
}

async function number(path: string): Promise<number> {
  const text = (await readFile(path, 'latin1')).trim();
  return text === 'max' ? Infinity : Number(text);
}

/** A cgroup's domain read from its files; null if it has no limit (or none of those files). */
async function readCgroup(m: Memcg): Promise<DirtyDomain | null> {
  try {
    if (m.v2) {
      const [max, high, current, stat] = await Promise.all([number(`${m.dir}/memory.max`), number(`${m.dir}/memory.high`), number(`${m.dir}/memory.current`), readFile(`${m.dir}/memory.stat`, 'latin1')]);
      return cgroupDomain(Math.min(max, high), current, parseFields(stat), true);
    }
    const [usage, stat] = await Promise.all([number(`${m.dir}/memory.usage_in_bytes`), readFile(`${m.dir}/memory.stat`, 'latin1')]);
    const fields = parseFields(stat);
    return cgroupDomain(fields.get('hierarchical_memory_limit') ?? Infinity, usage, fields, false);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // the v2 root has no limit files
    throw err;
  }
}

async function readKnobs(): Promise<DirtyKnobs> {
  const [ratio, backgroundRatio, bytes, backgroundBytes] = await Promise.all(
    ['dirty_ratio', 'dirty_background_ratio', 'dirty_bytes', 'dirty_background_bytes'].map((k) => number(`/proc/sys/vm/${k}`)),
  );
  return { ratio: ratio!, backgroundRatio: backgroundRatio!, bytes: bytes!, backgroundBytes: backgroundBytes! };
}

let memcgs: Promise<Memcg[]> | null = null;

/** This machine's reading: the headroom of its domains, in bytes. */
export async function readHeadroom(): Promise<number> {
  memcgs ??= readFile('/proc/self/cgroup', 'latin1').then((t) => memcgsOf(t));
  const [knobs, vmstat, groups] = await Promise.all([readKnobs(), readFile('/proc/vmstat', 'latin1'), memcgs]);
  const machine = machineDomain(parseFields(vmstat));
  if (!machine) return 0;
  const domains = [machine];
  for (const d of await Promise.all(groups.map(readCgroup))) if (d) domains.push(d);
  return headroomOf(domains, knobs);
}

/** The process's gauge: the addon's switch is process-wide, as the page cache is. */
export const dirtyPages = new DirtyPageGauge(readHeadroom, sys.setWritesInline);
