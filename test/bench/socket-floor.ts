import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Fixture } from './fixture.js';
import { pageAligned } from './page-aligned.js';
import { sleep, type Load, type Measurement } from './measure.js';

const MiB = 1 << 20;
/** Buffers in flight at once: as many Rread frames as the server keeps in its pool. */
const IN_FLIGHT = 4;

/**
 * A peer that reads everything into one reused buffer and drops it: the receiving side costs its
 * own process, not the one measured, and allocates nothing per read. The buffer starts a page
 * (page-aligned.ts: where malloc puts 1 MiB, 16 bytes into a page, every copy into it was slow).
 */
const DRAIN = `
const net = require('node:net');
import(process.argv[2]).then(({ pageAligned }) => {
  const buffer = pageAligned(1 << 20);
  const c = net.connect({ port: Number(process.argv[1]), host: '127.0.0.1', onread: { buffer, callback: () => true } });
  c.on('error', () => process.exit(0));
  c.on('end', () => process.exit(0));
});
`;

/**
 * What `seq-read` costs below any protocol: this process reads `big` 1 MiB at a time from the page
 * cache and writes it to a loopback TCP socket whose reader discards it, with a few buffers in
 * flight. The limit column leaves the socket out; every server pays it, and on loopback the
 * sender also runs the receiver's TCP processing. Its CPU per MiB is this process's own.
 */
export async function measureSocketFloor(fixture: Fixture, t: Load): Promise<Measurement> {
  const listener = createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as { port: number }).port;
  const drain = spawn(process.execPath, ['-e', DRAIN, String(port), new URL('./page-aligned.js', import.meta.url).href], { stdio: 'ignore' });
  const accepted = new Promise<Socket>((resolve, reject) => {
    listener.once('connection', resolve);
    drain.once('exit', (code) => reject(new Error(`the socket floor's reader exited (${code}) before connecting`)));
    drain.once('error', reject);
  });
  const fd = openSync(join(fixture.dir, 'big'), 'r');
  try {
    const socket = await accepted;
    let sent = 0;
    let offset = 0;
    let running = true;
    const waiting: { wake: (() => void) | null } = { wake: null };
    const wake = () => {
      waiting.wake?.();
      waiting.wake = null;
    };
    const free = Array.from({ length: IN_FLIGHT }, () => pageAligned(MiB));
    const pump = (async () => {
      while (running) {
        const b = free.pop();
        if (!b) {
          await new Promise<void>((r) => (waiting.wake = r));
          continue;
        }
        if (offset + MiB > fixture.seqSize) offset = 0;
        const n = readSync(fd, b, 0, MiB, offset);
        offset += n;
        socket.write(b.subarray(0, n), () => {
          sent += n;
          free.push(b);
          wake();
        });
      }
    })();
    await sleep(t.warmup);
    const before = { sent, cpu: process.cpuUsage(), at: performance.now() };
    await sleep(t.seconds);
    const cpu = process.cpuUsage(before.cpu);
    const elapsed = (performance.now() - before.at) / 1000;
    const mib = (sent - before.sent) / MiB;
    running = false;
    wake();
    await pump;
    socket.destroy();
    const seconds = (cpu.user + cpu.system) / 1e6;
    return { rate: mib / elapsed, cpuPerUnit: seconds / mib, generatorCpu: seconds / elapsed, msize: 0, fallbacks: [] };
  } finally {
    closeSync(fd);
    drain.kill();
    listener.close();
  }
}
