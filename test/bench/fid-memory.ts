import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { treePath, TREE_SIZE } from './fixture.js';
import { PipelinedConnection } from './pipelined-connection.js';
import type { ServerUnderTest } from './servers.js';

/** Many clients each holding many fids: what a server's memory grows to (issue 14, item 3). */
export interface FidLoad {
  connections: number;
  fidsPerConnection: number;
}

export interface FidMemory {
  /** VmRSS once every connection has attached, before any fid is walked. */
  before: number;
  /** VmHWM (peak RSS) once every fid is held. */
  peak: number;
}

/** Walks in flight per connection while the fids are made. */
const IN_FLIGHT = 32;

/**
 * Open `connections` connections and walk `fidsPerConnection` fids on each to files of `tree/`
 * (each connection starts at another file, so the fids spread over all 10,000), then read the
 * server's peak RSS while all of them are held. The fids are walked, not opened: opened, 64,000
 * would need as many descriptors, past the usual hard limit of the servers under test.
 */
export async function measureFidMemory(server: ServerUnderTest, load: FidLoad): Promise<FidMemory> {
  const conns: PipelinedConnection[] = [];
  try {
    for (let c = 0; c < load.connections; c++) conns.push(await PipelinedConnection.open(server.port, 1 << 20, server.aname));
    const before = statusField(server.pid, 'VmRSS');
    await Promise.all(conns.map((conn, c) => holdFids(conn, c * load.fidsPerConnection, load.fidsPerConnection)));
    return { before, peak: statusField(server.pid, 'VmHWM') };
  } finally {
    for (const c of conns) c.close();
  }
}

async function holdFids(conn: PipelinedConnection, first: number, count: number): Promise<void> {
  let next = 0;
  const walker = async () => {
    while (next < count) {
      const wnames = treePath((first + next++) % TREE_SIZE).map((n) => Buffer.from(n));
      await conn.rpc('Twalk', { fid: conn.root, newfid: conn.newFid(), wnames });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, walker));
}

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(join('/proc', String(pid), 'status'), 'utf8'));
  if (!m) throw new Error(`no ${field} for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** The memory table printed under the rates. */
export function formatFidMemory(load: FidLoad, virtfs: FidMemory | string, diod: FidMemory | string): string {
  const mib = (x: number) => `${(x / (1 << 20)).toFixed(1)} MiB`;
  const cells = (m: FidMemory | string) => (typeof m === 'string' ? ['n/a', 'n/a'] : [mib(m.before), mib(m.peak)]);
  const [vb, vp] = cells(virtfs);
  const [db, dp] = cells(diod);
  const ratio = typeof virtfs === 'string' || typeof diod === 'string' ? 'n/a' : `${(virtfs.peak / diod.peak).toFixed(2)}×`;
  const label = `${load.connections} connections × ${load.fidsPerConnection.toLocaleString('en')} fids`;
  const lines = [
    '| memory | virtfs RSS before | virtfs peak RSS | diod RSS before | diod peak RSS | v/d peak |',
    '|---|---:|---:|---:|---:|---:|',
    `| ${label} | ${vb} | ${vp} | ${db} | ${dp} | ${ratio} |`,
  ];
  for (const [who, m] of [['virtfs', virtfs], ['diod', diod]] as const) if (typeof m === 'string') lines.push('', `- ${who}: ${m}`);
  return lines.join('\n');
}
