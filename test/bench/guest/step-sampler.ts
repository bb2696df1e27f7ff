import { cpuSeconds } from '../../integration/process-cpu.js';
import type { ServerUnderTest } from '../servers.js';
import type { ServerName, StepSample } from './guest-bench.js';

/**
 * Reads the server's and qemu's CPU time as the guest's step lines arrive. The console is a
 * serial port the host reads within milliseconds; the steps take seconds. Only successful steps
 * become samples.
 */
export class StepSampler {
  private pending = '';
  private guestPid = 0;
  private readonly started = new Map<string, { server: number; guest: number }>();
  private readonly done = new Map<string, StepSample[]>();

  /** `mark`, if given, hears each step line of a server in `servers` as it is read. */
  constructor(
    private readonly servers: Partial<Record<ServerName, ServerUnderTest>>,
    private readonly mark?: (phase: 'begin' | 'end', server: ServerName, step: string, run: number) => void,
  ) {}

  watchGuest(pid: number): void {
    this.guestPid = pid;
  }

  feed(text: string): void {
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop()!;
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    const m = /BENCH (begin|end) (virtfs|diod) (\d+) (\S+)(?: (\d+) (\d+))?/.exec(line);
    if (!m) return;
    const server = this.servers[m[2] as ServerName];
    if (!server) return;
    const key = `${m[2]} ${m[4]}`;
    const now = { server: cpuSeconds(server.pid), guest: this.guestPid ? cpuSeconds(this.guestPid) : 0 };
    this.mark?.(m[1] as 'begin' | 'end', m[2] as ServerName, m[4]!, Number(m[3]));
    if (m[1] === 'begin') {
      this.started.set(`${key} ${m[3]}`, now);
      return;
    }
    const start = this.started.get(`${key} ${m[3]}`);
    if (start === undefined || m[5] !== '0') return;
    const list = this.done.get(key) ?? [];
    list.push({ seconds: Number(m[6]) / 1e9, serverCpu: now.server - start.server, guestCpu: now.guest - start.guest });
    this.done.set(key, list);
  }

  samples(): Map<string, StepSample[]> {
    return this.done;
  }
}
