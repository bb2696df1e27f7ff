import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from '../../src/client/client.js';
import { AT_REMOVEDIR, LinuxOpenFlag as O } from '../../src/protocol/constants.js';
import { startVirtfs } from '../kernel/virtfs-process.js';

/**
 * A soak: several clients run a mix of operations on checksummed files against one `virtfs serve`
 * process for a while, the server's RSS and descriptor count sampled every second; at the end
 * every file each client believes in is checked, through the server and on the host, and nothing
 * else may be there. `node dist/test/soak/soak.js --minutes 10 --out docs/soak.md` writes the
 * report; the integration suite runs a short one.
 */

export interface SoakOptions {
  seconds: number;
  clients: number;
  serverArgs?: string[];
  /** Called once a second with the latest sample, for progress. */
  onSample?: (s: Sample) => void;
}

export interface Sample {
  /** Seconds since the clients started. */
  t: number;
  rssKiB: number;
  fds: number;
}

export interface SoakResult {
  options: SoakOptions;
  ops: Record<string, number>;
  bytesWritten: number;
  bytesRead: number;
  /** Unexpected errors, one line each. */
  errors: string[];
  /** Files whose content or presence was not what the client was told. */
  lost: string[];
  verified: number;
  samples: Sample[];
  /** After every client has disconnected. */
  final: Sample;
}

const MAX_FILE = 256 << 10;
const MAX_FILES_PER_CLIENT = 150;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

function sample(pid: number, t: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { t, rssKiB, fds: readdirSync(`/proc/${pid}/fd`).length };
}

/** One client's loop: its own directory, its own record of what each file holds. */
class Worker {
  readonly files = new Map<string, string>();
  private serial = 0;

  constructor(
    private readonly c: Client,
    private readonly root: number,
    private readonly dir: number,
    readonly name: string,
    private readonly result: SoakResult,
  ) {}

  private count(op: string): void {
    this.result.ops[op] = (this.result.ops[op] ?? 0) + 1;
  }

  private pick(): string | undefined {
    const names = [...this.files.keys()];
    return names.length ? names[randomInt(names.length)] : undefined;
  }

  private async writeFile(name: string, create: boolean): Promise<void> {
    const data = randomBytes(randomInt(MAX_FILE));
    const { fid } = await this.c.walk(this.dir, create ? [] : [name]);
    try {
      if (create) await this.c.create(fid, name, O.RDWR | O.EXCL, 0o644);
      else await this.c.open(fid, O.RDWR | O.TRUNC);
      await this.c.writeAll(fid, data);
      await this.c.fsync(fid);
    } finally {
      await this.c.clunk(fid);
    }
    // Only now, with fsync answered, is the content promised.
    this.files.set(name, md5(data));
    this.result.bytesWritten += data.length;
  }

  private async readFile(name: string): Promise<Buffer> {
    const { fid } = await this.c.walk(this.dir, [name]);
    try {
      await this.c.open(fid, O.RDONLY);
      const data = await this.c.readAll(fid);
      this.result.bytesRead += data.length;
      return data;
    } finally {
      await this.c.clunk(fid);
    }
  }

  async verify(name: string): Promise<void> {
    const data = await this.readFile(name);
    if (md5(data) !== this.files.get(name)) this.result.lost.push(`${this.name}/${name}: content differs`);
  }

  async step(): Promise<void> {
    const r = randomInt(100);
    const existing = this.pick();
    if (!existing || r < 35 || this.files.size < 5) {
      if (this.files.size >= MAX_FILES_PER_CLIENT && existing) return this.unlink(existing);
      this.count('create+write+fsync');
      return this.writeFile(`f${this.serial++}`, true);
    }
    if (r < 60) {
      this.count('read+verify');
      return this.verify(existing);
    }
    if (r < 68) {
      this.count('overwrite');
      return this.writeFile(existing, false);
    }
    if (r < 78) {
      this.count('rename');
      const to = `f${this.serial++}`;
      await this.c.renameat(this.dir, existing, this.dir, to);
      this.files.set(to, this.files.get(existing)!);
      this.files.delete(existing);
      return;
    }
    if (r < 83) return this.unlink(existing);
    if (r < 90) {
      this.count('readdir');
      const { fid } = await this.c.walk(this.dir, []);
      try {
        await this.c.open(fid, O.RDONLY | O.DIRECTORY);
        const names = (await this.c.readdir(fid)).map((e) => e.name.toString()).filter((n) => n !== '.' && n !== '..');
        const missing = [...this.files.keys()].filter((n) => !names.includes(n));
        if (missing.length || names.length !== this.files.size) this.result.lost.push(`${this.name}: readdir shows ${names.length} entries, expected ${this.files.size} (missing ${missing.slice(0, 3).join(', ')})`);
      } finally {
        await this.c.clunk(fid);
      }
      return;
    }
    if (r < 95) {
      this.count('xattr');
      const { fid } = await this.c.walk(this.dir, [existing]);
      try {
        await this.c.xattrSet(fid, 'user.md5', Buffer.from(this.files.get(existing)!));
        const back = (await this.c.xattrGet(fid, 'user.md5')).toString();
        if (back !== this.files.get(existing)) this.result.lost.push(`${this.name}/${existing}: xattr reads back ${back}`);
      } finally {
        await this.c.clunk(fid);
      }
      return;
    }
    this.count('mkdir+getattr+rmdir');
    const d = `d${this.serial++}`;
    await this.c.mkdir(this.dir, d, 0o755);
    const { fid } = await this.c.walk(this.dir, [d]);
    await this.c.getattr(fid);
    await this.c.clunk(fid);
    await this.c.unlinkat(this.dir, d, AT_REMOVEDIR);
  }

  private async unlink(name: string): Promise<void> {
    this.count('unlink');
    await this.c.unlinkat(this.dir, name);
    this.files.delete(name);
  }

  async close(): Promise<void> {
    await this.c.clunk(this.dir);
    await this.c.clunk(this.root);
    this.c.close();
  }
}

export async function soak(o: SoakOptions): Promise<SoakResult> {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-soak-'));
  const result: SoakResult = { options: o, ops: {}, bytesWritten: 0, bytesRead: 0, errors: [], lost: [], verified: 0, samples: [], final: { t: 0, rssKiB: 0, fds: 0 } };
  const server = await startVirtfs(dir, o.serverArgs ?? []);
  try {
    const start = Date.now();
    result.samples.push(sample(server.pid, 0));
    const timer = setInterval(() => {
      const s = sample(server.pid, Math.round((Date.now() - start) / 1000));
      result.samples.push(s);
      o.onSample?.(s);
    }, 1000);
    const workers: Worker[] = [];
    for (let i = 0; i < o.clients; i++) {
      const c = await Client.connect(`tcp:127.0.0.1:${server.port}`);
      const root = await c.attach({ nUname: 0 });
      await c.mkdir(root, `c${i}`, 0o755);
      const d = (await c.walk(root, [`c${i}`])).fid;
      workers.push(new Worker(c, root, d, `c${i}`, result));
    }
    const deadline = start + o.seconds * 1000;
    await Promise.all(
      workers.map(async (w) => {
        while (Date.now() < deadline) {
          try {
            await w.step();
          } catch (err) {
            result.errors.push(`${w.name}: ${(err as Error).message}`);
            if (result.errors.length > 20) throw err;
          }
        }
        for (const name of w.files.keys()) {
          await w.verify(name);
          result.verified++;
        }
        await w.close();
      }),
    );
    clearInterval(timer);
    // The server lets go of what the connections held once they are gone.
    await new Promise((r) => setTimeout(r, 1000));
    result.final = sample(server.pid, Math.round((Date.now() - start) / 1000));
    // And the host holds exactly what the clients were told, byte for byte.
    for (const w of workers) {
      const onHost = readdirSync(join(dir, w.name));
      for (const n of onHost) if (!w.files.has(n)) result.lost.push(`${w.name}/${n}: on the host, but the client removed or renamed it`);
      for (const [n, sum] of w.files) {
        let data: Buffer | null = null;
        try {
          data = readFileSync(join(dir, w.name, n));
        } catch {
          result.lost.push(`${w.name}/${n}: missing on the host`);
        }
        if (data && md5(data) !== sum) result.lost.push(`${w.name}/${n}: host content differs`);
      }
    }
    return result;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Highest RSS and descriptor count over a window of samples [from, to) seconds. */
export function peak(samples: Sample[], from: number, to: number): { rssKiB: number; fds: number } {
  const w = samples.filter((s) => s.t >= from && s.t < to);
  return { rssKiB: Math.max(...w.map((s) => s.rssKiB)), fds: Math.max(...w.map((s) => s.fds)) };
}

export function report(r: SoakResult): string {
  const total = r.options.seconds;
  const mib = (k: number) => (k / 1024).toFixed(1);
  const minute = Math.min(60, Math.floor(total / 4));
  const early = peak(r.samples, minute, 2 * minute);
  const late = peak(r.samples, total - minute, total + 1);
  const rows: string[] = [];
  const step = Math.max(1, Math.floor(total / 10));
  for (let t = 0; t <= total; t += step) {
    const s = r.samples.find((x) => x.t >= t);
    if (s) rows.push(`| ${s.t} | ${mib(s.rssKiB)} | ${s.fds} |`);
  }
  const ops = Object.entries(r.ops).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ');
  const args = (r.options.serverArgs ?? []).join(' ') || '(defaults)';
  return `# Soak: ${r.options.clients} clients, ${total / 60} minute${total === 60 ? '' : 's'}

- Command: \`node dist/test/soak/soak.js --minutes ${total / 60} --clients ${r.options.clients}\` (server: \`virtfs serve\` ${args}, its own process, over loopback TCP)
- Date: ${new Date().toISOString().slice(0, 10)}; machine: ${process.arch}, Node ${process.version}
- Operations: ${ops} (${Object.values(r.ops).reduce((a, b) => a + b, 0)} in all; ${mib(r.bytesWritten / 1024)} MiB written, ${mib(r.bytesRead / 1024)} MiB read)
- Every file each client was told is on disk (after fsync) was read back through the server and from the host: **${r.verified} verified, ${r.lost.length} lost or wrong**${r.lost.length ? `: ${r.lost.slice(0, 5).join('; ')}` : ''}
- Unexpected errors: ${r.errors.length}${r.errors.length ? `: ${r.errors.slice(0, 5).join('; ')}` : ''}
- Server RSS: peak ${mib(early.rssKiB)} MiB in the second window of ${minute} s, ${mib(late.rssKiB)} MiB in the last; ${mib(r.final.rssKiB)} MiB after the clients left
- Server descriptors: peak ${early.fds} in the second window, ${late.fds} in the last; ${r.final.fds} after the clients left (${r.samples[0]!.fds} before they came)

| seconds | RSS (MiB) | descriptors |
|---|---|---|
${rows.join('\n')}
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, clients: { type: 'string', default: '8' }, out: { type: 'string' } } });
  const seconds = Math.round(Number(values.minutes) * 60);
  const r = await soak({ seconds, clients: Number(values.clients), onSample: (s) => s.t % 30 === 0 && process.stderr.write(`soak: ${s.t} s, RSS ${(s.rssKiB / 1024).toFixed(1)} MiB, ${s.fds} descriptors\n`) });
  const md = report(r);
  if (values.out) writeFileSync(values.out, md);
  process.stdout.write(md);
  process.exitCode = r.lost.length || r.errors.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
