import { openSync, readFileSync, readSync } from 'node:fs';
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
 * The reading is taken only while writes come, by the write that finds it older than
 * {@link REFRESH_MS}, or spent and older than {@link RETRY_MS}, before that write is placed. It is
 * synchronous: the files are procfs, sysfs and cgroupfs text made from counters in memory, held
 * open and read again from the start (tens of microseconds), where reading them through the
 * thread pool cost a guest's lone write as much as the hop the inline write saves, several times
 * over. A calm reading is trusted for {@link STALE_MS}: then a timer turns inline writes off (the
 * addon's few writes of its own, such as mapped-file's metadata, do not poke the gauge).
 */
export class DirtyPageGauge {
  private readAt = -Infinity;
  private calm = false;
  /** Bytes the server may still write before the reading's domains reach half their ceiling. */
  private headroom = 0;
  private expiry: NodeJS.Timeout | null = null;

  constructor(
    /** The headroom in bytes now (0 or less: none); throws if it cannot tell. */
    private readonly read: () => number,
    private readonly apply: (calm: boolean) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Before each write of `bytes`: count them, and take a new reading if the one held is old, or spent and not just taken. */
  poke(bytes = 0): void {
    const age = this.now() - this.readAt;
    const spent = this.headroom - bytes <= 0;
    if (age < (spent ? RETRY_MS : REFRESH_MS)) {
      this.headroom -= bytes;
      if (spent) this.set(false);
      return;
    }
    let headroom: number;
    try {
      headroom = this.read();
    } catch {
      headroom = 0;
    }
    this.readAt = this.now();
    this.headroom = headroom - bytes;
    const calm = this.headroom > 0;
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

/** A reading this old is taken again. */
export const REFRESH_MS = 100;
/** A reading the server's writes have spent is taken again no sooner than this. */
export const RETRY_MS = 10;
/** A calm reading this old is not trusted. */
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

/**
 * The value of one line "NAME VALUE" of a file such as /proc/vmstat or memory.stat; undefined if
 * it has none. Looked up where it stands: splitting the whole of /proc/vmstat (some 200 lines)
 * cost a reading more than the kernel's making it.
 */
export function fieldOf(text: string, name: string): number | undefined {
  for (let at = text.indexOf(name); at >= 0; at = text.indexOf(name, at + 1)) {
    const end = at + name.length;
    if ((at === 0 || text[at - 1] === '\n') && text[end] === ' ') {
      const eol = text.indexOf('\n', end);
      return Number(text.slice(end + 1, eol < 0 ? undefined : eol));
    }
  }
  return undefined;
}

const PAGE = 4096;

/** The machine's domain from /proc/vmstat (counts in pages). */
export function machineDomain(vmstat: string, pageSize = PAGE): DirtyDomain | null {
  const [free, inactive, active, dirty, writeback] = ['nr_free_pages', 'nr_inactive_file', 'nr_active_file', 'nr_dirty', 'nr_writeback'].map((k) => fieldOf(vmstat, k));
  if ([free, inactive, active, dirty, writeback].some((v) => v === undefined || !Number.isFinite(v))) return null;
  return { dirtyable: (free! + inactive! + active!) * pageSize, dirty: (dirty! + writeback!) * pageSize };
}

/**
 * A memory cgroup's domain: its room below its limit plus the file pages it holds, and its dirty
 * pages; null if it has no limit. v2 names its files memory.max/high/current and file,
 * file_dirty, file_writeback; v1 memory.limit_in_bytes (as hierarchical_memory_limit, which
 * counts its ancestors), usage_in_bytes and cache, dirty, writeback.
 */
export function cgroupDomain(limit: number, usage: number, stat: string, v2: boolean): DirtyDomain | null {
  if (!Number.isFinite(limit) || limit >= 2 ** 62) return null;
  const [file, dirty, writeback] = (v2 ? ['file', 'file_dirty', 'file_writeback'] : ['cache', 'dirty', 'writeback']).map((k) => fieldOf(stat, k) ?? 0);
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

/**
 * A kernel text file held open and read again from offset 0, where procfs, sysfs and cgroupfs
 * make it anew from their counters. Opened by open() (see openReadingFiles) or its first read;
 * close-on-exec (Node's default).
 */
export class KernelTextFile {
  private fd = -1;
  private static buf = Buffer.allocUnsafe(16 << 10);

  constructor(readonly path: string) {}

  /** Open it now if it can be (a file that does not exist is left to fail when read). */
  open(): void {
    if (this.fd >= 0) return;
    try {
      this.fd = openSync(this.path, 'r');
    } catch {
      // read() says why, if it is ever read
    }
  }

  text(): string {
    if (this.fd < 0) this.fd = openSync(this.path, 'r');
    let n = 0;
    for (let got; (got = readSync(this.fd, KernelTextFile.buf, n, KernelTextFile.buf.length - n, n)) > 0; ) {
      n += got;
      if (n === KernelTextFile.buf.length) {
        const grown = Buffer.allocUnsafe(n * 2);
        KernelTextFile.buf.copy(grown);
        KernelTextFile.buf = grown;
      }
    }
    return KernelTextFile.buf.toString('latin1', 0, n);
  }

  /** The file's one number ("max": Infinity). */
  number(): number {
    const text = this.text().trim();
    return text === 'max' ? Infinity : Number(text);
  }
}

/** The files of one memory cgroup's reading. */
class CgroupFiles {
  private readonly limits: KernelTextFile[];
  private readonly usage: KernelTextFile;
  private readonly stat: KernelTextFile;

  get files(): KernelTextFile[] {
    return [...this.limits, this.usage, this.stat];
  }

  constructor(private readonly m: Memcg) {
    const f = (name: string) => new KernelTextFile(`${m.dir}/${name}`);
    this.limits = m.v2 ? [f('memory.max'), f('memory.high')] : [];
    this.usage = f(m.v2 ? 'memory.current' : 'memory.usage_in_bytes');
    this.stat = f('memory.stat');
  }

  /** Its domain; null if it has no limit (or none of the files: the v2 root has no limit files). */
  domain(): DirtyDomain | null {
    try {
      if (this.m.v2) {
        const limit = Math.min(...this.limits.map((l) => l.number()));
        if (!Number.isFinite(limit)) return null;
        return cgroupDomain(limit, this.usage.number(), this.stat.text(), true);
      }
      const usage = this.usage.number();
      const stat = this.stat.text();
      return cgroupDomain(fieldOf(stat, 'hierarchical_memory_limit') ?? Infinity, usage, stat, false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }
}

const knobFiles = ['dirty_ratio', 'dirty_background_ratio', 'dirty_bytes', 'dirty_background_bytes'].map((k) => new KernelTextFile(`/proc/sys/vm/${k}`));
const vmstatFile = new KernelTextFile('/proc/vmstat');
let cgroupFiles: CgroupFiles[] | null = null;

function readKnobs(): DirtyKnobs {
  const [ratio, backgroundRatio, bytes, backgroundBytes] = knobFiles.map((f) => f.number());
  return { ratio: ratio!, backgroundRatio: backgroundRatio!, bytes: bytes!, backgroundBytes: backgroundBytes! };
}

function cgroups(): CgroupFiles[] {
  return (cgroupFiles ??= memcgsOf(readFileSync('/proc/self/cgroup', 'latin1')).map((m) => new CgroupFiles(m)));
}

/**
 * Open the reading's files now, those that exist: called as an export is opened, so that
 * they are among the server's standing descriptors from its start, not new ones at its first
 * write (a leak, to anyone counting).
 */
export function openReadingFiles(): void {
  try {
    for (const f of [...knobFiles, vmstatFile, ...cgroups().flatMap((g) => g.files)]) f.open();
  } catch {
    // no /proc/self/cgroup: the reading fails too, and writes keep the pool
  }
}

/** This machine's reading: the headroom of its domains, in bytes. */
export function readHeadroom(): number {
  const groups = cgroups();
  const knobs = readKnobs();
  const machine = machineDomain(vmstatFile.text());
  if (!machine) return 0;
  const domains = [machine];
  for (const g of groups) {
    const d = g.domain();
    if (d) domains.push(d);
  }
  return headroomOf(domains, knobs);
}

/** The process's gauge: the addon's switch is process-wide, as the page cache is. */
export const dirtyPages = new DirtyPageGauge(readHeadroom, sys.setWritesInline);
