import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { SecurityOptions } from './backend/local/create-model.js';
import { Client } from './client/client.js';
import { startServer } from './index.js';
import { AT_REMOVEDIR, GetattrMask, LinuxOpenFlag as O, SetattrValid } from './protocol/constants.js';
import { P9Error } from './protocol/errno.js';

/** Requests the warm-up sends: about what V8 needs to have optimised the paths a guest uses. */
export const WARM_UP_REQUESTS = 12_000;
/** What its looked-up objects may hold: it works in one small directory, and adds little to the process's descriptors. */
const WARM_UP_DESCRIPTORS = 32;

export interface WarmUp {
  /** Resolves once it has finished, or been stopped, and its scratch directory is gone. */
  readonly done: Promise<void>;
  /** Stop between two requests; resolves as `done`. */
  stop(): Promise<void>;
}

/**
 * Send the server's own code paths a guest's mix of requests before the guest does. V8 runs a
 * function's first thousands of calls in its interpreter and baseline tiers, and optimises it
 * only then: measured one request at a time on a fresh server (walks, getattrs, opens, reads,
 * listings, clunks, 1 ms apart), its first 6,000 requests cost about twice the server CPU of the
 * same requests once warm, and a guest's first minute (a boot from a virtfs root, the first
 * `tar x`) is exactly that. This runs the same code through a second server in this process, on
 * a scratch export with the export's security model, over a unix socket beside it (both in a
 * fresh 0700 directory under the system's temporary one), so the transport, session, handlers,
 * backend and model all warm: V8's optimised code is shared by every instance of a class. The
 * guest's export is never touched. It runs beside whatever guests already send, a request at a
 * time, and never fails the server: an error ends it early, logged at debug level.
 */
export function startWarmUp(o: { security?: SecurityOptions; requests?: number; log: Logger }): WarmUp {
  let stopping = false;
  const done = run(o.security, o.requests ?? WARM_UP_REQUESTS, () => stopping, o.log).catch((err: unknown) => {
    o.log.debug({ err }, 'warm-up ended early');
  });
  return {
    done,
    stop: () => {
      stopping = true;
      return done;
    },
  };
}

async function run(security: SecurityOptions | undefined, requests: number, stopping: () => boolean, log: Logger): Promise<void> {
  const started = performance.now();
  // mkdtemp makes it 0700: nobody else reaches the socket or the scratch export inside.
  const dir = await mkdtemp(join(tmpdir(), 'virtfs-warm-up-'));
  try {
    const root = join(dir, 'export');
    await mkdir(root);
    const socket = `unix:${join(dir, 'socket')}`;
    const server = await startServer({ root, listen: socket, security, maxDescriptors: WARM_UP_DESCRIPTORS, log: pino({ level: 'silent' }) });
    try {
      const client = await Client.connect(socket);
      try {
        const sent = await exercise(client, requests, stopping);
        log.debug({ requests: sent, ms: Math.round(performance.now() - started) }, 'warmed up');
      } finally {
        client.conn.close();
      }
    } finally {
      await server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What a guest's programs ask of a shared folder, round after round; returns the requests sent. */
async function exercise(c: Client, requests: number, stopping: () => boolean): Promise<number> {
  let sent = 0;
  const counted = <T>(p: Promise<T>): Promise<T> => {
    sent++;
    return p;
  };
  /** A request the guest expects to fail (a missing name, an absent attribute): the error path warms too. */
  const failing = async (p: Promise<unknown>): Promise<void> => {
    sent++;
    await p.then(
      () => {},
      (e: unknown) => {
        if (!(e instanceof P9Error)) throw e;
      },
    );
  };
  const root = await counted(c.attach({ uname: 'root', nUname: process.getuid?.() ?? 0 }));
  const data = Buffer.alloc(4096, 0x5a);
  const dir = 'd';
  await counted(c.mkdir(root, dir, 0o755));
  for (let round = 0; sent < requests && !stopping(); round++) {
    const name = `f${round % 16}`;
    // tar x: look up, create, write, set times and mode, ask for capabilities.
    const d = (await counted(c.walk(root, [dir]))).fid;
    await failing(c.walk(d, [`missing-${round}`]));
    const f = (await counted(c.walk(d, []))).fid;
    await counted(c.create(f, name, O.WRONLY | O.CREAT | O.TRUNC, 0o644));
    await counted(c.write(f, 0n, data));
    await failing(c.xattrGet(f, 'security.capability'));
    await counted(c.setattr(f, { valid: SetattrValid.MODE | SetattrValid.ATIME | SetattrValid.MTIME, mode: 0o600 }));
    await counted(c.clunk(f));
    // ls -l, cat, cp: look up, stat, open, read, list.
    const g = (await counted(c.walk(d, [name]))).fid;
    await counted(c.getattr(g, GetattrMask.BASIC));
    await counted(c.open(g, O.RDONLY));
    await counted(c.read(g, 0n, c.iounit));
    await counted(c.clunk(g));
    const l = (await counted(c.walk(d, []))).fid;
    await counted(c.getattr(l, GetattrMask.BASIC));
    await counted(c.open(l, O.RDONLY | O.DIRECTORY));
    await counted(c.readdir(l));
    sent++; // readdir's last Treaddir, answered empty
    await counted(c.clunk(l));
    // Renames, directories and removals come and go.
    if (round % 4 === 3) {
      await counted(c.renameat(d, name, d, `${name}.moved`));
      await counted(c.unlinkat(d, `${name}.moved`));
      await counted(c.mkdir(d, `sub${round}`, 0o755));
      await counted(c.unlinkat(d, `sub${round}`, AT_REMOVEDIR));
    }
    await counted(c.clunk(d));
  }
  return sent;
}
