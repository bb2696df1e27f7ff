/**
 * What `virtfs install-debian` shows while it works: one line per phase, and on a terminal a
 * bar for the current phase's packages, fed from the host's own steps and from the guest's
 * debootstrap (run with --debian-installer, whose "P: NOW END NAME" lines carry its progress).
 */
export class InstallProgress {
  private readonly recent: string[] = [];
  private partial = '';
  private current = '';
  private guestPhase = '';
  private readonly started = Date.now();

  constructor(private readonly out: NodeJS.WriteStream) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  private elapsed(): string {
    const s = Math.round((Date.now() - this.started) / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  phase(name: string): void {
    if (name === this.current) return;
    this.current = name;
    if (this.tty) this.out.write('\r\x1b[K');
    this.out.write(`virtfs: [${this.elapsed()}] ${name}\n`);
  }

  step(name: string, now: number, end: number, what: string): void {
    this.phase(name);
    if (!this.tty) return;
    const width = 30;
    const filled = end > 0 ? Math.round((width * Math.min(now, end)) / end) : 0;
    this.out.write(`\r\x1b[K  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${now}/${end} ${what}`.slice(0, (this.out.columns ?? 100) + 6));
  }

  /** The guest's console, line by line. */
  guestOutput(chunk: Buffer): void {
    const text = this.partial + chunk.toString('latin1');
    const lines = text.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.guestLine(line);
  }

  private guestLine(line: string): void {
    this.recent.push(line);
    if (this.recent.length > 60) this.recent.shift();
    // --debian-installer messages: "P: NOW END NAME" or "I: NAME", then "PA:"/"IA:" arguments,
    // then the printf format in "PF:"/"IF:".
    const p = /^P: (\d+) (\d+) (\S+)/.exec(line);
    if (p) {
      this.guestProgress = [Number(p[1]), Number(p[2])];
      this.args = [];
      return;
    }
    if (/^I: /.test(line)) this.args = [];
    const arg = /^(?:PA|IA): (.*)$/.exec(line);
    if (arg) {
      this.args.push(arg[1]!);
      return;
    }
    const fmt = /^(PF|IF): (.*)$/.exec(line);
    if (!fmt) return;
    let i = 0;
    const text = fmt[2]!.replace(/%s/g, () => this.args[i++] ?? '').replace(/\.\.\.$/, '');
    if (fmt[1] === 'IF' && this.args.length === 0) {
      this.guestPhase = text;
      this.phase(`guest: ${text}`);
    } else {
      this.step(`guest: ${this.guestPhase || text}`, this.guestProgress[0], this.guestProgress[1], text);
    }
  }

  private args: string[] = [];
  private guestProgress: [number, number] = [0, 0];

  /** The guest's last lines, for an error message. */
  tail(): string {
    return [...this.recent, this.partial].filter(Boolean).slice(-40).join('\n');
  }

  done(): void {
    if (this.tty) this.out.write('\r\x1b[K');
    this.out.write(`virtfs: [${this.elapsed()}] installed\n`);
  }
}
