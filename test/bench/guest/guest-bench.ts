import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runGuest } from '../../kernel/qemu-guest.js';
import { ensureDiod, startDiodServer, startVirtfsServer, type ServerUnderTest } from '../servers.js';
import { guestBenchArchive } from './guest-archive.js';
import { sourceTree, type SourceTree } from './source-tree.js';
import { RequestCensus, type Census } from './request-census.js';
import { StepSampler } from './step-sampler.js';

/**
 * The in-guest rows: one guest (Debian's kernel, software emulation) mounts virtfs and diod,
 * each serving its own empty directory on the host, with the same options over the same kind
 * of forward, and times what users do in a shared folder (steps.sh). The guest reports each
 * step's wall time; the host reads each server's CPU at the step's start and end lines.
 */

export const STEPS = ['tar-x', 'ls-lR', 'read-all', 'cp-a', 'git-status', 'seq-write', 'seq-read'] as const;
export type Step = (typeof STEPS)[number];
export type ServerName = ServerUnderTest['name'];

export interface GuestBenchOptions {
  /** Files in the source tree (plus its .git). */
  files: number;
  /** Size of the sequential file, MiB. */
  seqMiB: number;
  /** Runs of every step on each server, the servers taking turns to go first. */
  runs: number;
  /** msize asked for at mount (diod 1.0.24 agrees to 64 KiB whatever is asked). */
  msize: number;
  /** The client's cache mode, the same for both mounts. */
  cache: 'none' | 'loose' | 'mmap';
  /** Host directory holding each server's export (emptied first). */
  dir: string;
  diod: boolean;
  timeoutMs: number;
  /** Put a counting proxy in front of each server and report the requests of each step. */
  census?: boolean;
  log: (line: string) => void;
}

/** One step on one server in one run. */
export interface StepSample {
  seconds: number;
  /** The server process's user + system CPU between the step's start and end lines. */
  serverCpu: number;
  /** qemu's CPU over the same lines: the guest's kernel and programs, emulated, and its network. */
  guestCpu: number;
}

export interface GuestBenchResult {
  tree: SourceTree;
  options: GuestBenchOptions;
  /** Keyed `${server} ${step}`, one sample per run. */
  samples: Map<string, StepSample[]>;
  /** The guest's 9p lines of /proc/mounts: the options each mount was given and agreed. */
  mounts: string;
  /** What went wrong: failed steps, missing samples, trees or files on the host not as expected. */
  problems: string[];
  /** The guest's console, for diagnosing problems. */
  console: string;
  /** With `census`: the requests each step sent, keyed as `samples` with the run appended. */
  census: Map<string, Census>;
}

const stepsPath = new URL('../../../../test/bench/guest/steps.sh', import.meta.url);
/** Where the guest reaches diod: beside virtfs's 564 on the same restricted network. */
const DIOD_GUEST_PORT = 565;

export async function guestBench(o: GuestBenchOptions): Promise<GuestBenchResult> {
  if (o.diod) await ensureDiod(o.log);
  o.log(`source tree of ${o.files} files and the guest's archive (git, timer) …`);
  const tree = sourceTree(o.files);
  const archive = guestBenchArchive(tree);
  const exports = { virtfs: join(o.dir, 'virtfs'), diod: join(o.dir, 'diod') };
  rmSync(o.dir, { recursive: true, force: true });
  for (const d of Object.values(exports)) mkdirSync(d, { recursive: true, mode: 0o755 });

  const servers: Partial<Record<ServerName, ServerUnderTest>> = {};
  const proxies: Partial<Record<ServerName, RequestCensus>> = {};
  try {
    servers.virtfs = await startVirtfsServer(exports.virtfs);
    if (o.diod) servers.diod = await startDiodServer(exports.diod);
    if (o.census) for (const [name, s] of Object.entries(servers)) proxies[name as ServerName] = await RequestCensus.start(s.port);
    const portOf = (name: ServerName) => proxies[name]?.port ?? servers[name]!.port;
    // uname=root: the client's first attach is by name alone (n_uname unset), "nobody" unless
    // told, and diod -N, which has no user database, refuses that name with EPERM.
    const options = `,msize=${o.msize},uname=root${o.cache === 'none' ? '' : `,cache=${o.cache}`}`;
    const diodMount = o.diod ? `mount -t 9p -o trans=tcp,port=${DIOD_GUEST_PORT},version=9p2000.L${options},aname=${exports.diod} 10.0.2.100 /tmp/diod` : '';
    const quote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
    const script = `BENCH_RUNS=${o.runs}\nBENCH_SEQ_MIB=${o.seqMiB}\nBENCH_DIOD_MOUNT=${quote(diodMount)}\n${readFileSync(stepsPath, 'utf8')}`;
    const census = new Map<string, Census>();
    const begun = new Map<string, Census>();
    const sampler = new StepSampler(servers, (phase, server, step, run) => {
      const proxy = proxies[server];
      if (!proxy) return;
      const key = `${server} ${step} ${run}`;
      if (phase === 'begin') begun.set(key, proxy.snapshot());
      else census.set(key, proxy.since(begun.get(key) ?? new Map()));
    });
    o.log(`guest: ${o.runs} run(s) of ${STEPS.length} steps on ${Object.keys(servers).join(' and ')} …`);
    const result = await runGuest({
      port: portOf('virtfs'),
      forwards: servers.diod ? [{ guestPort: DIOD_GUEST_PORT, hostPort: portOf('diod') }] : [],
      mountOptions: `${options},aname=${exports.virtfs}`,
      script,
      archives: [archive],
      timeoutMs: o.timeoutMs,
      onOutput: (text) => sampler.feed(text),
      onStart: (pid) => sampler.watchGuest(pid),
    });
    const problems: string[] = [];
    const tail = () => result.console.split('\n').slice(-30).join('\n');
    if (!result.mounted) problems.push(`the guest did not mount virtfs:\n${tail()}`);
    else if (result.timedOut || !result.console.includes('BENCH done')) problems.push(`the guest did not finish its steps${result.timedOut ? ' (timed out)' : ''}:\n${tail()}`);
    for (const m of result.console.matchAll(/BENCH error (.*)/g)) problems.push(`step failed: ${m[1]!.trim()}`);
    const samples = sampler.samples();
    for (const server of Object.keys(servers) as ServerName[]) {
      for (const step of STEPS) {
        const got = samples.get(`${server} ${step}`)?.length ?? 0;
        if (got !== o.runs) problems.push(`${server} ${step}: ${got} of ${o.runs} runs reported`);
      }
      for (let run = 1; run <= o.runs; run++) problems.push(...checkExport(exports[server], server, run, tree, o.seqMiB, result.values));
    }
    return { tree, options: o, samples, mounts: result.values.get('mounts') ?? '', problems, console: result.console, census };
  } finally {
    for (const p of Object.values(proxies)) p.close();
    await servers.virtfs?.stop();
    await servers.diod?.stop();
  }
}

/** What each step left on the host: both trees whole, the sequential file full size, git clean. */
function checkExport(dir: string, server: ServerName, run: number, tree: SourceTree, seqMiB: number, values: Map<string, string>): string[] {
  const problems: string[] = [];
  const runDir = join(dir, `run${run}`);
  for (const part of ['src', 'copy']) {
    const path = join(runDir, part);
    const files = existsSync(path) ? countFiles(path) : 0;
    if (files !== tree.files) problems.push(`${server} run ${run}: ${part}/ holds ${files} files outside .git, expected ${tree.files}`);
  }
  const big = join(runDir, 'big');
  const size = existsSync(big) ? statSync(big).size : -1;
  if (size !== seqMiB << 20) problems.push(`${server} run ${run}: big is ${size} bytes, expected ${seqMiB << 20}`);
  const dirty = values.get(`git-dirty-${server}-${run}`);
  if (dirty !== '0') problems.push(`${server} run ${run}: git status listed ${dirty ?? 'nothing (not run)'} changed paths, expected 0`);
  return problems;
}

function countFiles(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += e.name === '.git' ? 0 : countFiles(join(dir, e.name));
    else if (e.isFile()) n++;
  }
  return n;
}
