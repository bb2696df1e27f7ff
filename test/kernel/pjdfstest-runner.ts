import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseUserArg } from '../../src/cli/drop-privileges.js';
import { guestAssets } from './kernel-assets.js';
import { pjdfstestAssets, pjdfstestTarball } from './pjdfstest-assets.js';
import { guestScript, parsePjdOutput, type FileResult } from './pjdfstest-guest.js';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';

/** A virtfs command line to run the suite against; adding one to a list adds a whole run. */
export interface PjdfstestConfig {
  name: string;
  /** Appended to `virtfs serve --listen ...` before the export directory. */
  serverArgs: string[];
  /** The uid the export directory is given; by default that of `--user` in serverArgs, if any. */
  exportOwner?: number;
}

export interface PartRun {
  name: string;
  files: string[];
  /** Host wall time of the guest: boot, mount, the scripts, power-off. */
  ms: number;
  guest: GuestResult;
}

export interface PjdfstestRun {
  config: PjdfstestConfig;
  /** Every script, in the order of the suite. */
  files: string[];
  results: Map<string, FileResult>;
  stderr: Map<string, string[]>;
  parts: PartRun[];
  ms: number;
  serverLog: string;
  kernelPackage: string;
  tarball: string;
}

/** The uid a server started with `--user USER` runs as: it must own the export. */
function userOf(serverArgs: string[]): number | undefined {
  const i = serverArgs.indexOf('--user');
  return i >= 0 && serverArgs[i + 1] ? parseUserArg(serverArgs[i + 1]!).uid : undefined;
}

/** Two guests of one CPU each keep both host cores busy (software emulation is CPU-bound). */
export const DEFAULT_PARTS = 2;
/** A part (~120 scripts) takes about 4 minutes; this is the bound for a hung one. */
const PART_TIMEOUT_MS = 25 * 60_000;

/**
 * Deal the scripts out in turn, back and forth (a b b a a b...), so each part gets a share of every
 * directory and neither is always dealt first. Measured on 2 parts: 201 s and 203 s of scripts
 * (plain alternation gave 161 s and 243 s: chown/00.t alone takes 100 s).
 */
export function splitParts(files: string[], parts: number): string[][] {
  const out: string[][] = Array.from({ length: parts }, () => []);
  files.forEach((f, i) => {
    const round = Math.floor(i / parts);
    const j = i % parts;
    out[round % 2 === 0 ? j : parts - 1 - j]!.push(f);
  });
  return out;
}

/**
 * Run every pjdfstest script through the kernel client: one virtfs for a fresh export, `parts`
 * guests at once, each mounting it once and running its share of the scripts.
 */
export async function runPjdfstest(config: PjdfstestConfig, opts: { parts?: number; log?: (msg: string) => void } = {}): Promise<PjdfstestRun> {
  const log = opts.log ?? (() => {});
  const { archive, files } = pjdfstestAssets();
  const { kernelPackage } = guestAssets(); // fetched here, once, not by each guest at once
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-pjdfstest-export-'));
  const owner = config.exportOwner ?? userOf(config.serverArgs);
  if (owner !== undefined) chownSync(dir, owner, owner);
  const started = Date.now();
  const server = await startVirtfs(dir, config.serverArgs);
  let parts: PartRun[];
  try {
    const names = 'abcdefghijklmnopqrstuvwxyz';
    parts = await Promise.all(
      splitParts(files, opts.parts ?? DEFAULT_PARTS).map(async (share, i): Promise<PartRun> => {
        const name = names[i]!;
        const t0 = Date.now();
        // Mounted plain (cache=none): every call goes to the server, so the suite judges the
        // server's answers, not the client's cached idea of them.
        const guest = await runGuest({ port: server.port, script: guestScript(share, name), archives: [archive], smp: 1, timeoutMs: PART_TIMEOUT_MS });
        const ms = Date.now() - t0;
        log(`pjdfstest ${config.name} part ${name}: ${share.length} files in ${(ms / 1000).toFixed(0)} s`);
        return { name, files: share, ms, guest };
      }),
    );
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const ms = Date.now() - started;
  log(`pjdfstest ${config.name}: ${files.length} files in ${(ms / 1000).toFixed(0)} s`);
  const results = new Map<string, FileResult>();
  const stderr = new Map<string, string[]>();
  for (const p of parts) {
    const parsed = parsePjdOutput(p.guest.console);
    // Only the files this part was given: a line from elsewhere cannot stand in for a missing one.
    for (const f of p.files) {
      const r = parsed.results.get(f);
      if (r) results.set(f, r);
      const e = parsed.stderr.get(f);
      if (e) stderr.set(f, e);
    }
  }
  return { config, files, results, stderr, parts, ms, serverLog: server.stderr(), kernelPackage, tarball: pjdfstestTarball() };
}
