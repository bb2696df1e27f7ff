import { closeSync, mkdirSync, openSync, opendirSync, readSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AT_REMOVEDIR, GetattrMask, IOHDRSZ, LinuxOpenFlag as O } from '../../src/protocol/constants.js';
import { SMALL_FILE, TREE_SIZE, settle, treePath, type Fixture, type FixturePart } from './fixture.js';
import type { Load, Measurement } from './measure.js';
import type { PipelinedConnection } from './pipelined-connection.js';
import { measureSocketFloor } from './socket-floor.js';
import { pageAligned } from './page-aligned.js';
import { clunk, openAt, renameAt, unlinkAt, walkTo } from './request-chains.js';

/** What one measurement's workers share: the cursor of the sequential rows. */
export interface Shared {
  cursor: number;
}

export interface WorkerContext {
  fixture: Fixture;
  conn: PipelinedConnection;
  /** Unique among the measurement's workers, for the names a worker creates. */
  id: string;
  shared: Shared;
}

/** One request chain at a time; the generator runs many side by side. */
export interface Worker {
  /** Do one unit of the row's work; resolves with the units done (operations, entries or MiB). */
  step(): Promise<number>;
  /** Release what start() took (fids, files). */
  finish(): Promise<void>;
}

/** The same work by direct system calls from this process, one at a time, no protocol. */
export interface LimitLoop {
  step(): number;
  finish(): void;
}

export interface Row {
  name: string;
  unit: 'op' | 'entry' | 'MiB';
  /** Workers per connection (the generator opens several connections). */
  workersPerConnection: number;
  /** What the row works on, beyond `scratch/`. */
  needs: readonly FixturePart[];
  start(ctx: WorkerContext): Promise<Worker>;
  /**
   * The row's work below any protocol but through a loopback socket, as every server must do it
   * (shown under the table; see socket-floor.ts).
   */
  floor?(fixture: Fixture, load: Load): Promise<Measurement>;
  /** Run before each measurement (every server's and the limit's), outside its window. */
  settle?(fixture: Fixture): void;
  limit(fixture: Fixture, shared: Shared, id: string): LimitLoop;
}

const MiB = 1 << 20;
const randomTreeFile = () => treePath(Math.floor(Math.random() * TREE_SIZE));
const fourK = Buffer.alloc(SMALL_FILE, 'w');
const oneMiB = Buffer.alloc(MiB, 0x77);

/** Bytes per request for the sequential rows: 1 MiB, or what the negotiated msize allows. */
export function seqRequestSize(msize: number): number {
  return Math.min(MiB, msize - IOHDRSZ);
}

/** A row whose workers hold one fid for the whole measurement. */
function holding(fidOf: (ctx: WorkerContext) => Promise<number>, step: (ctx: WorkerContext, fid: number) => Promise<number>) {
  return async (ctx: WorkerContext): Promise<Worker> => {
    const fid = await fidOf(ctx);
    return { step: () => step(ctx, fid), finish: () => clunk(ctx.conn, fid) };
  };
}

function nextSeqOffset(shared: Shared, size: number, total: number): number {
  if (shared.cursor + size > total) shared.cursor = 0;
  const at = shared.cursor;
  shared.cursor += size;
  return at;
}

export const rows: readonly Row[] = [
  {
    name: 'stat',
    unit: 'op',
    workersPerConnection: 8,
    needs: ['tree'],
    async start({ conn }) {
      return {
        async step() {
          const fid = await walkTo(conn, randomTreeFile());
          await conn.rpc('Tgetattr', { fid, requestMask: GetattrMask.BASIC });
          await clunk(conn, fid);
          return 1;
        },
        finish: async () => {},
      };
    },
    limit: (f) => ({ step: () => (statSync(join(f.dir, ...randomTreeFile())), 1), finish() {} }),
  },
  {
    name: 'open-read-4k',
    unit: 'op',
    workersPerConnection: 8,
    needs: ['tree'],
    async start({ conn }) {
      return {
        async step() {
          const fid = await openAt(conn, randomTreeFile(), O.RDONLY);
          const r = await conn.rpc('Tread', { fid, offset: 0n, count: SMALL_FILE });
          if (r.data.length !== SMALL_FILE) throw new Error(`short read: ${r.data.length}`);
          await clunk(conn, fid);
          return 1;
        },
        finish: async () => {},
      };
    },
    limit(f) {
      const buf = Buffer.alloc(SMALL_FILE);
      return {
        step() {
          const fd = openSync(join(f.dir, ...randomTreeFile()), 'r');
          readSync(fd, buf, 0, SMALL_FILE, 0);
          closeSync(fd);
          return 1;
        },
        finish() {},
      };
    },
  },
  {
    name: 'create-write-unlink',
    unit: 'op',
    workersPerConnection: 8,
    needs: [],
    start: holding(
      ({ conn }) => walkTo(conn, ['scratch']),
      async ({ conn, id }, dfid) => {
        const name = Buffer.from(`cwu-${id}`);
        const fid = conn.newFid();
        await conn.rpc('Twalk', { fid: dfid, newfid: fid, wnames: [] });
        await conn.rpc('Tlcreate', { fid, name, flags: O.WRONLY | O.CREAT | O.TRUNC, mode: 0o644, gid: 0 });
        await conn.rpc('Twrite', { fid, offset: 0n, data: fourK });
        await clunk(conn, fid);
        await unlinkAt(conn, dfid, name, 0);
        return 1;
      },
    ),
    limit(f, _s, id) {
      const path = join(f.dir, 'scratch', `cwu-limit-${id}`);
      return {
        step() {
          const fd = openSync(path, 'w', 0o644);
          writeSync(fd, fourK, 0, SMALL_FILE, 0);
          closeSync(fd);
          unlinkSync(path);
          return 1;
        },
        finish() {},
      };
    },
  },
  {
    name: 'readdir',
    unit: 'entry',
    workersPerConnection: 2,
    needs: ['wide'],
    async start({ conn }) {
      return {
        // Open, list to the end, clunk: as `ls` does. Counts entries other than . and ..
        // Asks for msize - IOHDRSZ bytes, as the Linux client does (diod answers EIO to more).
        async step() {
          const fid = await openAt(conn, ['wide'], O.RDONLY | O.DIRECTORY);
          let offset = 0n;
          let entries = 0;
          for (;;) {
            const r = await conn.rpc('Treaddir', { fid, offset, count: conn.msize - IOHDRSZ });
            const got = countDirents(r.data);
            if (got.records === 0) break;
            entries += got.entries;
            offset = got.lastOffset;
          }
          await clunk(conn, fid);
          return entries;
        },
        finish: async () => {},
      };
    },
    limit(f) {
      return {
        step() {
          const d = opendirSync(join(f.dir, 'wide'), { bufferSize: 1024 });
          let entries = 0;
          while (d.readSync() !== null) entries++;
          d.closeSync();
          return entries;
        },
        finish() {},
      };
    },
  },
  {
    name: 'seq-read',
    unit: 'MiB',
    workersPerConnection: 2,
    needs: ['big'],
    floor: measureSocketFloor,
    start: holding(
      ({ conn }) => openAt(conn, ['big'], O.RDONLY),
      async ({ conn, shared, fixture }, fid) => {
        const size = seqRequestSize(conn.msize);
        const at = nextSeqOffset(shared, size, fixture.seqSize);
        const r = await conn.rpc('Tread', { fid, offset: BigInt(at), count: size });
        return r.data.length / MiB;
      },
    ),
    limit(f, shared) {
      const fd = openSync(join(f.dir, 'big'), 'r');
      const buf = pageAligned(MiB);
      return {
        step: () => readSync(fd, buf, 0, MiB, nextSeqOffset(shared, MiB, f.seqSize)) / MiB,
        finish: () => closeSync(fd),
      };
    },
  },
  {
    name: 'seq-write',
    unit: 'MiB',
    workersPerConnection: 2,
    needs: ['seqw'],
    // Each measurement starts with `seqw` cached and clean, not with the last one's writeback.
    settle: (f) => settle(join(f.dir, 'seqw')),
    start: holding(
      ({ conn }) => openAt(conn, ['seqw'], O.WRONLY),
      async ({ conn, shared, fixture }, fid) => {
        const size = seqRequestSize(conn.msize);
        const at = nextSeqOffset(shared, size, fixture.seqSize);
        const r = await conn.rpc('Twrite', { fid, offset: BigInt(at), data: oneMiB.subarray(0, size) });
        return r.count / MiB;
      },
    ),
    limit(f, shared) {
      const fd = openSync(join(f.dir, 'seqw'), 'r+');
      return {
        step: () => writeSync(fd, oneMiB, 0, MiB, nextSeqOffset(shared, MiB, f.seqSize)) / MiB,
        finish: () => closeSync(fd),
      };
    },
  },
  {
    name: 'rand-read-4k',
    unit: 'op',
    workersPerConnection: 8,
    needs: ['big'],
    start: holding(
      ({ conn }) => openAt(conn, ['big'], O.RDONLY),
      async ({ conn, fixture }, fid) => {
        await conn.rpc('Tread', { fid, offset: BigInt(randomBlock(fixture.seqSize)), count: SMALL_FILE });
        return 1;
      },
    ),
    limit(f) {
      const fd = openSync(join(f.dir, 'big'), 'r');
      const buf = Buffer.allocUnsafe(SMALL_FILE);
      return { step: () => (readSync(fd, buf, 0, SMALL_FILE, randomBlock(f.seqSize)), 1), finish: () => closeSync(fd) };
    },
  },
  {
    name: 'mkdir-rmdir',
    unit: 'op',
    workersPerConnection: 8,
    needs: [],
    start: holding(
      ({ conn }) => walkTo(conn, ['scratch']),
      async ({ conn, id }, dfid) => {
        const name = Buffer.from(`dir-${id}`);
        await conn.rpc('Tmkdir', { dfid, name, mode: 0o755, gid: 0 });
        await unlinkAt(conn, dfid, name, AT_REMOVEDIR);
        return 1;
      },
    ),
    limit(f, _s, id) {
      const path = join(f.dir, 'scratch', `dir-limit-${id}`);
      return { step: () => (mkdirSync(path, 0o755), rmdirSync(path), 1), finish() {} };
    },
  },
  {
    name: 'rename',
    unit: 'op',
    workersPerConnection: 8,
    needs: [],
    // Each worker moves its own file back and forth between two names in one directory.
    async start({ conn, id }) {
      const dfid = await walkTo(conn, ['scratch']);
      const created = conn.newFid();
      await conn.rpc('Twalk', { fid: dfid, newfid: created, wnames: [] });
      const names = [Buffer.from(`ren-${id}-a`), Buffer.from(`ren-${id}-b`)] as const;
      await conn.rpc('Tlcreate', { fid: created, name: names[0], flags: O.WRONLY | O.CREAT, mode: 0o644, gid: 0 });
      await clunk(conn, created);
      const fid = conn.newFid();
      await conn.rpc('Twalk', { fid: dfid, newfid: fid, wnames: [names[0]] });
      let at = 0;
      return {
        async step() {
          await renameAt(conn, dfid, names[at]!, names[1 - at]!, fid);
          at = 1 - at;
          return 1;
        },
        async finish() {
          await clunk(conn, fid);
          await unlinkAt(conn, dfid, names[at]!, 0);
          await clunk(conn, dfid);
        },
      };
    },
    limit(f, _s, id) {
      const paths = [join(f.dir, 'scratch', `ren-limit-${id}-a`), join(f.dir, 'scratch', `ren-limit-${id}-b`)] as const;
      closeSync(openSync(paths[0], 'w'));
      let at = 0;
      return {
        step() {
          renameSync(paths[at]!, paths[1 - at]!);
          at = 1 - at;
          return 1;
        },
        finish: () => unlinkSync(paths[at]!),
      };
    },
  },
];

function randomBlock(size: number): number {
  return Math.floor(Math.random() * Math.floor(size / SMALL_FILE)) * SMALL_FILE;
}

/**
 * Walk Rreaddir data: records, those other than . and .., and the last one's offset. Nothing is
 * made per entry: parsing each into objects cost the generator more than the servers' packing.
 */
export function countDirents(data: Buffer): { records: number; entries: number; lastOffset: bigint } {
  let records = 0;
  let entries = 0;
  let last = -1;
  for (let p = 0; p + 24 <= data.length; ) {
    const n = data.readUInt16LE(p + 22);
    const dot = data[p + 24] === 0x2e && (n === 1 || (n === 2 && data[p + 25] === 0x2e));
    if (!dot) entries++;
    records++;
    last = p;
    p += 24 + n;
  }
  return { records, entries, lastOffset: last < 0 ? 0n : data.readBigUInt64LE(last + 13) };
}
