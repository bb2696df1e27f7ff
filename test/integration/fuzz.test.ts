import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { openFdCount } from '../../src/backend/local/sys.js';
import { startServer, type RunningServer, type ServeOptions } from '../../src/index.js';
import { message } from '../../src/protocol/codec.js';
import { NOFID, NOTAG } from '../../src/protocol/constants.js';
import { isMessage, MessageType, type Message, type MessageName } from '../../src/protocol/messages.js';
import { attached, type RawPeer } from './server-fixture.js';

// Well-formed requests with hostile values, pipelined, with a session reset (Tversion) now and
// then: whatever they ask, the server answers each one exactly once (or, if flushed, not after
// its Rflush), keeps serving, touches nothing outside the export, and gives back every
// descriptor when the connection goes.

const ubig = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
const u32 = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 0x7fffffff, 0xffffffff), fc.nat({ max: 0xffffffff }));
const u64 = fc.oneof(fc.constantFrom(0n, 1n, 4096n, 1n << 32n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n), ubig(64));
// 0-7 are set up before each run (0 is the root); 8-11 are free for new fids.
const fid = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 8, arbitrary: fc.integer({ min: 0, max: 11 }) }, { weight: 1, arbitrary: u32 });
const newfid = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 8, max: 11 }) }, { weight: 1, arbitrary: fid });
const name = fc.oneof(
  fc.constantFrom('a', 'd', 'b', 'new', 'up', 'abs', 'etc', 'secret', 'outside', '.', '..', '', 'x/y', '/', '../outside', '.virtfs_metadata', '.virtfs_metadata_root').map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
);
const openFlags = fc.oneof(fc.constantFrom(0, 1, 2, 0o100, 0o1000, 0o2000, 0o200000, 0o4000000, 0o10000000), u32);
const mode = fc.oneof(fc.constantFrom(0o644, 0o755, 0o10644, 0o20644, 0o60644, 0o140755, 0o40755, 0o120777), u32);
const small = fc.integer({ min: 0, max: 70000 });

/** A request as plain data, so a counterexample prints readably; `build` gives it a tag. */
type Spec = { name: MessageName; fields: Record<string, unknown> } | { name: 'Tflush'; back: number };
const spec = (name: MessageName, fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Spec> =>
  fc.record(fields).map((f) => ({ name, fields: f }));

function build(s: Spec, tag: number, earlier: number[]): Message {
  if ('back' in s) return message('Tflush', { tag, oldtag: earlier[earlier.length - 1 - (s.back % Math.max(1, earlier.length))] ?? NOTAG });
  return message(s.name, { tag, ...s.fields } as never);
}

// Walks favour the names that lead out of the export, so an escape is found if there is one.
const walkName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('..', '..', '..', 'up', 'abs', 'etc', 'd', 'b', 'a', 'outside', 'deeper', 'secret').map((n) => Buffer.from(n)) },
  { weight: 1, arbitrary: name },
);
const lockClient = { procId: u32, clientId: fc.string({ maxLength: 20 }) };

/** Any 9P2000.L request; now and then a Tversion, which resets the session mid-stream. */
const request: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 1, arbitrary: spec('Tversion', { msize: fc.constantFrom(65536, 8192, 4096, 100), version: fc.constantFrom('9P2000.L', '9P2000.L', '9P2000', 'x') }) },
  spec('Tgetattr', { fid, requestMask: u64 }),
  { weight: 4, arbitrary: spec('Twalk', { fid, newfid, wnames: fc.oneof({ weight: 4, arbitrary: fc.array(walkName, { maxLength: 3 }) }, fc.array(walkName, { maxLength: 16 })) }) },
  spec('Tlopen', { fid, flags: openFlags }),
  spec('Tlcreate', { fid, name, flags: openFlags, mode, gid: u32 }),
  spec('Tsymlink', { fid, name, target: name, gid: u32 }),
  spec('Tmknod', { dfid: fid, name, mode, major: u32, minor: u32, gid: u32 }),
  spec('Trename', { fid, dfid: fid, name }),
  spec('Treadlink', { fid }),
  spec('Tsetattr', { fid, valid: u32, mode, uid: u32, gid: u32, size: fc.oneof(u64, ubig(20)), atimeSec: u64, atimeNsec: u64, mtimeSec: u64, mtimeNsec: u64 }),
  spec('Txattrwalk', { fid, newfid, name }),
  spec('Txattrcreate', { fid, name, attrSize: fc.oneof(u64, ubig(17)), flags: u32 }),
  spec('Treaddir', { fid, offset: u64, count: fc.oneof(u32, small) }),
  spec('Tfsync', { fid, datasync: u32 }),
  // Never blocking: a blocking lock waits (correctly) until the holder lets go.
  spec('Tlock', { fid, lockType: fc.nat({ max: 255 }), flags: fc.constant(0), start: u64, length: u64, ...lockClient }),
  spec('Tgetlock', { fid, lockType: fc.nat({ max: 255 }), start: u64, length: u64, ...lockClient }),
  spec('Tlink', { dfid: fid, fid, name }),
  spec('Tmkdir', { dfid: fid, name, mode, gid: u32 }),
  spec('Trenameat', { oldDirFid: fid, oldName: name, newDirFid: fid, newName: name }),
  spec('Tunlinkat', { dfid: fid, name, flags: fc.oneof(fc.constantFrom(0, 0x200), u32) }),
  spec('Tauth', { afid: u32, uname: fc.string({ maxLength: 10 }), aname: fc.string({ maxLength: 10 }), nUname: u32 }),
  spec('Tattach', {
    fid,
    afid: fc.oneof(fc.constant(NOFID), u32),
    uname: fc.constantFrom('root', 'nobody', ''),
    aname: fc.constantFrom('', '/', 'x'),
    nUname: fc.constantFrom(0, 65534, NOFID),
  }),
  fc.nat({ max: 63 }).map((back): Spec => ({ name: 'Tflush', back })),
  spec('Tread', { fid, offset: fc.oneof(u64, ubig(16)), count: fc.oneof(u32, small) }),
  spec('Twrite', { fid, offset: fc.oneof(u64, ubig(16)), data: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) }),
  spec('Tclunk', { fid }),
  spec('Tremove', { fid }),
  spec('Tstatfs', { fid }),
);

let base: string;
let parent: string;
let root: string;
let outside: string;
let server: RunningServer;
let port: number;

/**
 * A fresh start for each run, so a failure belongs to the run that caused it: the export holds
 * files, a directory, and symlinks that point out of it; beside it lies what must stay untouched.
 */
function resetTrees(): void {
  // Undo whatever an escaping run did beside the export, whatever modes it left.
  chmodSync(parent, 0o700);
  chownSync(parent, process.getuid!(), process.getgid!());
  for (const n of readdirSync(parent)) if (n !== 'export') rmSync(join(parent, n), { recursive: true, force: true });
  mkdirSync(join(outside, 'deeper'), { recursive: true });
  writeFileSync(join(outside, 'secret'), 'do not touch');
  // The server holds the root directory itself open: empty it, never replace it.
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  for (const n of readdirSync(root)) rmSync(join(root, n), { recursive: true, force: true });
  mkdirSync(join(root, 'd'));
  writeFileSync(join(root, 'a'), 'alpha');
  writeFileSync(join(root, 'd', 'b'), 'beta');
  symlinkSync('..', join(root, 'up'));
  symlinkSync(outside, join(root, 'abs'));
  symlinkSync(join(outside, 'deeper'), join(root, 'etc'));
}

/**
 * The qid.path of every directory above the export and of everything beside it: a reply that
 * names one of them has escaped. (qid.path is the inode number on the export's own filesystem.)
 */
function forbiddenPaths(): Set<bigint> {
  const out = new Set<bigint>();
  for (let d = parent; ; d = dirname(d)) {
    out.add(lstatSync(d, { bigint: true }).ino);
    if (d === dirname(d)) break;
  }
  for (const n of readdirSync(outside, { recursive: true, encoding: 'utf8' })) out.add(lstatSync(join(outside, n), { bigint: true }).ino);
  out.add(lstatSync(outside, { bigint: true }).ino);
  return out;
}

/** Everything a stray operation could change: names, content, mode, owner, size, times. */
function snapshot(dir: string): string {
  const paths = [dir, ...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((n) => join(dir, n))];
  return paths
    .map((p) => {
      const st = lstatSync(p, { bigint: true });
      const content = st.isFile() ? readFileSync(p, 'utf8') : '';
      return `${p} ${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${content}`;
    })
    .sort()
    .join('\n');
}

before(async () => {
  // Deeper than one walk can climb (16 names): should confinement ever break, what a single
  // request reaches is still this test's own directory.
  base = mkdtempSync(join(tmpdir(), 'virtfs-fuzz-'));
  parent = join(base, ...Array<string>(17).fill('up'));
  mkdirSync(parent, { recursive: true });
  root = join(parent, 'export');
  outside = join(parent, 'outside');
  resetTrees();
});
after(() => {
  rmSync(base, { recursive: true, force: true });
});

/**
 * Send a batch pipelined and check its replies: one per tag, each of the request's own type or
 * Rlerror, and none after the Rflush that flushed it (a flushed request may get none at all).
 */
async function exchange(p: RawPeer, batch: Spec[], firstTag: number, forbidden: Set<bigint>): Promise<void> {
  const sent = new Map<number, Message>();
  const tags: number[] = [];
  batch.forEach((sp, i) => {
    const tag = firstTag + i;
    const m = build(sp, tag, tags);
    tags.push(tag);
    sent.set(tag, m);
    p.send(m);
  });
  const flushed = new Map<number, number>(); // target tag -> the last Tflush naming it
  for (const [tag, m] of sent) if (isMessage(m, 'Tflush') && sent.has(m.oldtag) && m.oldtag !== tag) flushed.set(m.oldtag, tag);

  const answered = new Set<number>();
  const rflushed = new Set<number>();
  while (answered.size < sent.size) {
    const missing = [...sent.keys()].filter((t) => !answered.has(t));
    if (missing.every((t) => flushed.has(t) && rflushed.has(flushed.get(t)!))) break;
    const r = await p.next(5_000);
    assert.ok(r, `the server closed the connection; unanswered: ${missing.map((t) => sent.get(t)!.type).join(',')}`);
    const req = sent.get(r.tag);
    assert.ok(req, `reply for a tag never sent: ${r.tag}`);
    assert.ok(!answered.has(r.tag), `second reply for tag ${r.tag}`);
    assert.ok(r.type === MessageType.Rlerror || r.type === req.type + 1, `type ${r.type} answers a request of type ${req.type}`);
    const flushTag = flushed.get(r.tag);
    if (flushTag !== undefined) assert.ok(!rflushed.has(flushTag), `tag ${r.tag} answered after its Rflush`);
    if (isMessage(r, 'Rflush')) rflushed.add(r.tag);
    answered.add(r.tag);
    const qids = 'qids' in r ? r.qids : 'qid' in r ? [r.qid] : [];
    for (const q of qids) {
      if (forbidden.has(q.path)) {
        escaped = true;
        assert.fail(`request ${JSON.stringify(batch, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))} reached qid.path ${q.path} outside the export`);
      }
    }
  }
}

/**
 * Set once a reply has named something outside the export: from then on no more requests are
 * sent (the property passes vacuously), so shrinking cannot carry an escape further and the
 * escaping run is reported as it was.
 */
let escaped = false;

/** A connection attached as root with fids 1-7 on files, directories and links, some open. */
async function openClient(): Promise<RawPeer> {
  const p = await attached(port, 65536);
  const setup: [number, string[], number | null][] = [
    [1, ['a'], 2], [2, ['d'], 0], [3, ['d', 'b'], 0], [4, [], null], [5, ['up'], null], [6, ['etc'], null], [7, ['d'], null],
  ];
  for (const [newfid, path, flags] of setup) {
    p.send(message('Twalk', { tag: 0, fid: 0, newfid, wnames: path.map((n) => Buffer.from(n)) }));
    assert.ok(isMessage((await p.next())!, 'Rwalk'));
    if (flags === null) continue;
    p.send(message('Tlopen', { tag: 0, fid: newfid, flags }));
    assert.ok(isMessage((await p.next())!, 'Rlopen'));
  }
  return p;
}

/** Run a client's batches one after another, then check the connection still answers. */
async function drive(p: RawPeer, batches: Spec[][], forbidden: Set<bigint>): Promise<void> {
  let nextTag = 1;
  for (const batch of batches) {
    await exchange(p, batch, nextTag, forbidden);
    nextTag += batch.length;
  }
  p.send(message('Tstatfs', { tag: 9999, fid: 0 }));
  const r = await p.next();
  assert.ok(r && r.tag === 9999, 'the connection stopped answering');
}

const batches = fc.array(fc.array(request, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 25 });

/** Every security model, and a squashed user whose every call runs confined. */
const configurations: [string, Partial<ServeOptions>][] = [
  ['passthrough', {}],
  ['mapped-xattr', { security: { model: 'mapped-xattr' } }],
  ['mapped-file', { security: { model: 'mapped-file' } }],
  ['none', { security: { model: 'none' } }],
  ['passthrough, every user squashed', { identity: { squash: 'all' } }],
];

for (const [label, options] of configurations) describe(`hostile but well-formed requests (${label})`, () => {
  before(async () => {
    resetTrees();
    server = await startServer({ root, listen: 'tcp:127.0.0.1:0', log: pino({ level: 'silent' }), limits: { maxFidsPerConnection: 64 }, ...options });
    port = server.address.kind === 'tcp' ? server.address.port : 0;
  });
  after(() => server.close());

  test('every request is answered once, in order with flushes, and nothing outside the export changes', async () => {
    await fc.assert(
      // One client, or two at once on the same files (locks, renames and removals meet).
      fc.asyncProperty(fc.array(batches, { minLength: 1, maxLength: 2 }), async (clients) => {
        if (escaped) return;
        resetTrees();
        const forbidden = forbiddenPaths();
        // Per run, so that a leak is pinned on (and shrunk to) the requests that caused it.
        const fdBase = openFdCount();
        const outsideBefore = snapshot(outside);
        const parentBefore = readdirSync(parent).sort();
        const parentStat = lstatSync(parent, { bigint: true });
        const peers: RawPeer[] = [];
        try {
          for (let i = 0; i < clients.length; i++) peers.push(await openClient());
          await Promise.all(clients.map((c, i) => drive(peers[i]!, c, forbidden)));
        } finally {
          for (const p of peers) p.close();
        }
        assert.equal(snapshot(outside), outsideBefore, 'something outside the export changed');
        assert.deepEqual(readdirSync(parent).sort(), parentBefore, 'something appeared beside the export');
        const ps = lstatSync(parent, { bigint: true });
        assert.deepEqual([ps.mode, ps.uid, ps.gid], [parentStat.mode, parentStat.uid, parentStat.gid], "the export's parent changed");
        for (let i = 0; i < 200 && openFdCount() > fdBase; i++) await sleep(10);
        assert.ok(openFdCount() <= fdBase, `${openFdCount() - fdBase} descriptors left open after the connections closed`);
      }),
      { numRuns: 250, includeErrorInReport: true, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
    );
  });
});
