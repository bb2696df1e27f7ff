import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { startVirtfs, type DirectVirtfsProcess } from '../kernel/virtfs-process.js';
import { encode, message } from '../../src/protocol/codec.js';
import { LinuxOpenFlag as O, NOTAG } from '../../src/protocol/constants.js';
import { Errno, P9Error } from '../../src/protocol/errno.js';
import { isMessage } from '../../src/protocol/messages.js';
import { memoryOf, MiB, peakDuring, type MemoryField } from './process-memory.js';
import { attached, negotiated, RawPeer, startFixture } from './server-fixture.js';
import { b, WireClient } from './wire-client.js';

/** `virtfs serve ARGS` in a child process on a fresh directory that `prepare` fills first. */
async function withServer(args: string[], prepare: (dir: string) => void, body: (server: DirectVirtfsProcess) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-memory-'));
  prepare(dir);
  const server = await startVirtfs(dir, args);
  try {
    await body(server);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server still answers `c` promptly. */
async function assertServes(c: WireClient, what: string): Promise<void> {
  const started = Date.now();
  await c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn });
  assert.ok(Date.now() - started < 2000, `${what}: a getattr took ${Date.now() - started} ms`);
}

/** Ask `c` for a getattr every 100 ms until stopped; resolves the slowest answer's time (ms). */
function keepAsking(c: WireClient): { stop(): Promise<number> } {
  let slowest = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      const answered = c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn }).then(() => true);
      // A getattr that never comes back counts as slow as the wait, not as forever.
      const within = await Promise.race([answered, sleep(5000).then(() => false)]);
      slowest = Math.max(slowest, within ? Date.now() - started : 5000);
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return slowest;
    },
  };
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

describe('memory is bounded by settings, under attack', () => {
  /**
   * A client opens `file` and sends 1 MiB Treads of it for `ms` without ever reading a reply, while
   * another client keeps asking for getattrs. Resolves the peak growth of the server's `field`.
   */
  async function treadsWithoutReading(server: DirectVirtfsProcess, file: string, ms: number, field: MemoryField, ceiling: number) {
    const other = await WireClient.attach(server.port);
    const attacker = await attached(server.port, MiB);
    attacker.send(message('Twalk', { tag: 2, fid: 0, newfid: 1, wnames: [b(file)] }));
    attacker.send(message('Tlopen', { tag: 3, fid: 1, flags: O.RDONLY }));
    assert.ok(isMessage((await attacker.next())!, 'Rwalk'));
    assert.ok(isMessage((await attacker.next())!, 'Rlopen'));
    attacker.socket.pause();
    const base = memoryOf(server.pid, field);
    const asking = keepAsking(other);
    let sent = 0;
    const peak = await peakDuring(server.pid, field, base + ceiling, async (stop) => {
      const until = Date.now() + ms;
      while (Date.now() < until && !stop.aborted) {
        if (attacker.socket.writableLength < 64 << 10) {
          const batch = Array.from({ length: 256 }, () => encode(message('Tread', { tag: sent++ % NOTAG, fid: 1, offset: 0n, count: MiB })));
          attacker.socket.write(Buffer.concat(batch));
        }
        await sleep(5);
      }
    });
    const slowest = await asking.stop();
    attacker.close();
    assert.ok(slowest < 2000, `another client waited ${slowest} ms for a getattr during the attack`);
    await assertServes(other, 'after the attack');
    other.close();
    return { grown: peak - base, sent, slowest };
  }

  // Requests in progress (each with its reply frame), replies queued, one request frame.
  const treadBound = 16 * MiB + 2 * MiB + MiB;

  test('a client sending 1 MiB Treads without reading the replies holds at most --max-requests × msize + --max-reply-queue', async (t) => {
    await withServer(['--max-requests', '16'], (dir) => writeFileSync(join(dir, 'big'), Buffer.alloc(MiB, 7)), async (server) => {
      const { grown, sent, slowest } = await treadsWithoutReading(server, 'big', 4000, 'VmRSS', 10 * treadBound);
      t.diagnostic(`VmRSS +${mib(grown)} at most (bound ${mib(treadBound)}), ${sent} Treads sent, slowest other getattr ${slowest} ms`);
      // Beyond the bound itself: the garbage collector's lag in freeing replies already sent.
      assert.ok(grown < 2 * treadBound, `the server grew by ${mib(grown)} (bound ${mib(treadBound)}) while ${sent} Treads were sent`);
    });
  });

  test('a frame header announcing msize costs nothing until its bytes come', async (t) => {
    const connections = 300;
    await withServer(['--max-connections', String(connections + 1)], () => {}, async (server) => {
      const other = await WireClient.attach(server.port);
      const base = memoryOf(server.pid, 'VmData');
      const peers: RawPeer[] = [];
      for (let i = 0; i < connections; i++) peers.push(await negotiated(server.port, MiB));
      // The header of a 1 MiB Twrite and 1,000 bytes of it; the rest never comes.
      const start = Buffer.alloc(1007, 1);
      start.writeUInt32LE(MiB, 0);
      start[4] = 118;
      for (const p of peers) p.send(start);
      await sleep(500);
      const grown = memoryOf(server.pid, 'VmData') - base;
      t.diagnostic(`VmData +${mib(grown)}, VmRSS ${mib(memoryOf(server.pid, 'VmRSS'))}`);
      // Each connection's socket, session and partial frame: a few KiB, far from the 1 MiB announced.
      assert.ok(grown < 64 * MiB, `the server allocated ${mib(grown)} for ${connections} announced but unsent MiB`);
      await assertServes(other, 'with the partial frames held');
      for (const p of peers) p.close();
      other.close();
    });
  });

  test('open directories hold no getdents buffer between Treaddirs', async (t) => {
    const fids = 300;
    const prepare = (dir: string) => {
      // More than 1 MiB of entries, so that a getdents buffer of 1 MiB is filled (made resident).
      mkdirSync(join(dir, 'd'));
      for (let i = 0; i < 4000; i++) writeFileSync(join(dir, 'd', `${i}`.padStart(240, 'n')), '');
    };
    await withServer([], prepare, async (server) => {
      const c = await WireClient.attach(server.port, 0, MiB);
      const base = memoryOf(server.pid, 'VmRSS');
      for (let i = 0; i < fids; i += 10) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, j) => {
            const fid = 10 + i + j;
            await c.walk(0, fid, 'd');
            await c.rpc('Tlopen', { fid, flags: O.RDONLY | O.DIRECTORY });
            const r = await c.rpc('Treaddir', { fid, offset: 0n, count: MiB });
            assert.ok(r.data.length > MiB / 2);
          }),
        );
      }
      const grown = memoryOf(server.pid, 'VmRSS') - base;
      t.diagnostic(`VmRSS +${mib(grown)}`);
      // Each reply was a 1 MiB frame: V8 lets some 64 MiB of them wait for its next collection.
      assert.ok(grown < 160 * MiB, `the server grew by ${mib(grown)} with ${fids} directories open and read`);
      await assertServes(c, 'with the directories open');
      c.close();
    });
  });

  test('xattr values held by all connections together stay within --max-xattr-bytes (ENOSPC beyond)', async (t) => {
    const connections = 20;
    const perConnection = 128;
    const value = Buffer.alloc(65536, 7);
    await withServer(['--max-xattr-bytes', String(4 * MiB)], () => {}, async (server) => {
      const other = await WireClient.attach(server.port);
      const clients = await Promise.all(Array.from({ length: connections }, () => WireClient.attach(server.port, 0, 128 << 10)));
      const base = memoryOf(server.pid, 'VmRSS');
      let held = 0;
      let refused = 0;
      const peak = await peakDuring(server.pid, 'VmRSS', base + 400 * MiB, async () => {
        await Promise.all(
          clients.map(async (c) => {
            for (let i = 0; i < perConnection; i++) {
              const fid = 10 + i;
              await c.walk(0, fid, '');
              try {
                await c.rpc('Txattrcreate', { fid, name: b('user.held'), attrSize: BigInt(value.length), flags: 0 });
              } catch (err) {
                assert.equal((err as P9Error).errno, Errno.ENOSPC);
                refused++;
                continue;
              }
              await c.rpc('Twrite', { fid, offset: 0n, data: value });
              held++;
            }
          }),
        );
      });
      t.diagnostic(`VmRSS +${mib(peak - base)} at most; ${held} values held, ${refused} refused`);
      assert.ok(peak - base < 48 * MiB, `the server grew by ${mib(peak - base)} holding ${mib(held * value.length)} of xattr values`);
      assert.equal(held, 64, 'exactly 4 MiB of 64 KiB values are held');
      assert.equal(refused, connections * perConnection - 64);
      await assertServes(other, 'with the budget spent');
      for (const c of clients) c.close();
      other.close();
    });
  });

  test('connections beyond --max-connections are closed at once and logged, so their frames cost nothing', async (t) => {
    const attempts = 100;
    await withServer(['--max-connections', '10'], () => {}, async (server) => {
      const other = await WireClient.attach(server.port);
      const base = memoryOf(server.pid, 'VmRSS');
      const peers = await Promise.all(Array.from({ length: attempts }, () => RawPeer.connect(server.port)));
      // Each sends all of a 1 MiB Twrite but its last byte: what a served connection may hold.
      const frame = Buffer.alloc(MiB - 1, 1);
      frame.writeUInt32LE(MiB, 0);
      frame[4] = 118;
      for (const p of peers) {
        p.send(message('Tversion', { tag: NOTAG, msize: MiB, version: '9P2000.L' }));
        p.send(frame);
      }
      await sleep(1000);
      const grown = memoryOf(server.pid, 'VmRSS') - base;
      const open = peers.filter((p) => !p.closed).length;
      t.diagnostic(`VmRSS +${mib(grown)}, ${open} connections served`);
      assert.ok(grown < 40 * MiB, `the server grew by ${mib(grown)} with ${attempts} connections each sending 1 MiB`);
      assert.equal(open, 9, 'nine served beside the other client');
      assert.match(server.stderr(), /refusing connections beyond 10 \(--max-connections\)/);
      assert.equal(server.stderr().match(/refusing connections/g)?.length, 1, 'one log line for a burst of refusals');
      await assertServes(other, 'at the connection limit');
      for (const p of peers) p.close();
      other.close();
    });
  });
});

describe('requests started whatever one read brings', () => {
  /** The most requests the server has had in progress at once from now on. */
  function peakInProgress(fx: Awaited<ReturnType<typeof startFixture>>): () => number {
    const stats = fx.running.server.context.stats;
    let now = stats.requestsInProgress;
    let peak = 0;
    Object.defineProperty(stats, 'requestsInProgress', {
      get: () => now,
      set: (v: number) => {
        now = v;
        peak = Math.max(peak, v);
      },
    });
    return () => peak;
  }

  test('1,500 requests in one write start at most --max-requests at once; the rest wait, and all are answered', async () => {
    const fx = await startFixture({ limits: { maxRequestsInFlight: 16 } });
    try {
      // An fsync always takes a thread-pool hop, so each stays in progress once started: without
      // the hold, one read would start all 1,500 before the first finished. (A getattr would not
      // do: on a local filesystem it is answered before the next frame is even looked at.)
      writeFileSync(join(fx.root, 'f'), 'x');
      const peak = peakInProgress(fx);
      const p = await attached(fx.port);
      p.send(message('Twalk', { tag: 1, fid: 0, newfid: 1, wnames: [b('f')] }));
      assert.ok(isMessage((await p.next())!, 'Rwalk'));
      p.send(message('Tlopen', { tag: 1, fid: 1, flags: O.RDWR }));
      assert.ok(isMessage((await p.next())!, 'Rlopen'));
      p.send(Buffer.concat(Array.from({ length: 1500 }, (_, i) => encode(message('Tfsync', { tag: 100 + i, fid: 1, datasync: 1 })))));
      for (let i = 0; i < 1500; i++) {
        const r = await p.next();
        assert.ok(r && isMessage(r, 'Rfsync'), `reply ${i}`);
      }
      assert.equal(peak(), 16);
      p.close();
    } finally {
      await fx.close();
    }
  });

  test('getattrs on a local filesystem are answered as they are read: one in progress at a time, and the replies come in order', async () => {
    const fx = await startFixture({ limits: { maxRequestsInFlight: 16 } });
    try {
      const peak = peakInProgress(fx);
      const p = await attached(fx.port);
      p.send(Buffer.concat(Array.from({ length: 1500 }, (_, i) => encode(message('Tgetattr', { tag: 100 + i, fid: 0, requestMask: 0x7ffn })))));
      for (let i = 0; i < 1500; i++) {
        const r = await p.next();
        assert.ok(r && isMessage(r, 'Rgetattr') && r.tag === 100 + i, `reply ${i}`);
      }
      assert.equal(peak(), 1);
      p.close();
    } finally {
      await fx.close();
    }
  });
});

describe('connections that never finish a frame', () => {
  test('by default one that says nothing for an hour, as QEMU’s guestfwd connection before its guest mounts, is still served', async (t) => {
    const fx = await startFixture();
    try {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const early = await RawPeer.connect(fx.port);
      t.mock.timers.tick(3600_000);
      t.mock.timers.reset();
      await sleep(50);
      assert.equal(early.closed, false);
      early.send(message('Tversion', { tag: NOTAG, msize: 65536, version: '9P2000.L' }));
      assert.ok(isMessage((await early.next())!, 'Rversion'));
      early.close();
    } finally {
      await fx.close();
    }
  });

  test('one that agrees no version within --handshake-timeout is closed; one that did and idles is not', async () => {
    const fx = await startFixture({ limits: { handshakeTimeoutMs: 300 } });
    try {
      const silent = await RawPeer.connect(fx.port);
      const idle = await attached(fx.port);
      assert.equal(await silent.waitClosed(2000), true, 'the silent connection is closed');
      await sleep(300);
      assert.equal(idle.closed, false);
      idle.send(message('Tclunk', { tag: 5, fid: 0 }));
      assert.ok(isMessage((await idle.next())!, 'Rclunk'));
      idle.close();
    } finally {
      await fx.close();
    }
  });

  test('one whose partial frame gets no byte for --frame-timeout is closed; one that trickles is served', async () => {
    const fx = await startFixture({ limits: { frameTimeoutMs: 400 } });
    try {
      const stalled = await attached(fx.port);
      const trickling = await attached(fx.port);
      const clunk = encode(message('Tclunk', { tag: 5, fid: 0 }));
      stalled.send(clunk.subarray(0, 5));
      for (let i = 0; i < clunk.length; i++) {
        trickling.send(clunk.subarray(i, i + 1));
        await sleep(100);
      }
      assert.equal(await stalled.waitClosed(2000), true, 'the stalled connection is closed');
      assert.ok(isMessage((await trickling.next())!, 'Rclunk'), 'a frame sent a byte at a time over 1.1 s is served');
      trickling.close();
    } finally {
      await fx.close();
    }
  });
});
