import { readFileSync } from 'node:fs';

/**
 * VmRSS is what a process keeps resident; VmData what it has allocated, resident or not. Memory
 * allocated but not yet written is not resident until malloc hands it out again after a free, so
 * an attack on allocation alone shows in VmData first.
 */
export type MemoryField = 'VmRSS' | 'VmData';

/** A field of /proc/PID/status, in bytes. */
export function memoryOf(pid: number, field: MemoryField): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} for process ${pid}`);
  return Number(m[1]) * 1024;
}

export const MiB = 1 << 20;

/**
 * The highest `field` of process `pid`, sampled every 50 ms while `attack` runs. Once it passes
 * `ceiling` the attack is told to stop (its signal aborts): a server without the bound under test
 * fails the test quickly instead of taking the machine down.
 */
export async function peakDuring(pid: number, field: MemoryField, ceiling: number, attack: (stop: AbortSignal) => Promise<void>): Promise<number> {
  const stop = new AbortController();
  let peak = memoryOf(pid, field);
  const sample = () => {
    peak = Math.max(peak, memoryOf(pid, field));
    if (peak > ceiling) stop.abort();
  };
  const timer = setInterval(sample, 50);
  try {
    await attack(stop.signal);
  } finally {
    clearInterval(timer);
  }
  sample();
  return peak;
}
