import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { decode, encode, message } from '../../src/protocol/codec.js';
import { LinuxOpenFlag as O, NOFID, NOTAG } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { FrameSplitter } from '../../src/protocol/frame-splitter.js';
import { isMessage, type Message } from '../../src/protocol/messages.js';
import { startFixture } from './server-fixture.js';
import { b, WireClient } from './wire-client.js';
import { rejectsWith } from './assertions.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Send frames one by one over a duplex pair and collect the replies. */
function exchange(write: (f: Buffer) => void, onData: (cb: (c: Buffer) => void) => void) {
  const replies: Message[] = [];
  const waiters: ((m: Message) => void)[] = [];
  const splitter = new FrameSplitter({ frame: (f) => {
    const m = decode(Buffer.from(f));
    const w = waiters.shift();
    if (w) w(m);
    else replies.push(m);
  }, oversized: () => {}, malformed: () => {} }, () => 1 << 24);
  onData((c) => splitter.push(c));
  return (m: Message): Promise<Message> => {
    write(encode(m));
    const ready = replies.shift();
    return ready ? Promise.resolve(ready) : new Promise((r) => waiters.push(r));
  };
}

describe('transports', () => {
  test('a Unix socket serves the same protocol', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'virtfs-unix-'));
    const sock = join(dir, 'virtfs.sock');
    const fx = await startFixture({ listen: `unix:${sock}` });
    writeFileSync(join(fx.root, 'hello'), 'over unix');
    const s = net.connect(sock);
    await new Promise((r) => s.once('connect', r));
    const rpc = exchange((f) => s.write(f), (cb) => s.on('data', cb));
    assert.ok(isMessage(await rpc(message('Tversion', { tag: NOTAG, msize: 8192, version: '9P2000.L' })), 'Rversion'));
    assert.ok(isMessage(await rpc(message('Tattach', { tag: 1, fid: 0, afid: NOFID, uname: '', aname: '', nUname: 0 })), 'Rattach'));
    await rpc(message('Twalk', { tag: 2, fid: 0, newfid: 1, wnames: [b('hello')] }));
    await rpc(message('Tlopen', { tag: 3, fid: 1, flags: O.RDONLY }));
    const r = await rpc(message('Tread', { tag: 4, fid: 1, offset: 0n, count: 100 }));
    assert.ok(isMessage(r, 'Rread'));
    assert.equal(r.data.toString(), 'over unix');
    s.destroy();
    await fx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a stale Unix socket file left by a dead server is replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'virtfs-unix-'));
    const sock = join(dir, 'virtfs.sock');
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(sock, r));
    // Simulate a crash: the file stays, nobody listens.
    (stale as unknown as { _handle: { close(): void } })._handle.close();
    const fx = await startFixture({ listen: `unix:${sock}` });
    const s = net.connect(sock);
    await new Promise((r, j) => (s.once('connect', r), s.once('error', j)));
    s.destroy();
    await fx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--listen stdio serves one connection on stdin/stdout and exits when stdin closes', async () => {
    const root = mkdtempSync(join(tmpdir(), 'virtfs-stdio-'));
    writeFileSync(join(root, 'f'), 'over a pipe');
    const p = spawn(process.execPath, [main, 'serve', '--listen', 'stdio', root], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    const rpc = exchange((f) => p.stdin.write(f), (cb) => p.stdout.on('data', cb));
    assert.ok(isMessage(await rpc(message('Tversion', { tag: NOTAG, msize: 8192, version: '9P2000.L' })), 'Rversion'));
    await rpc(message('Tattach', { tag: 1, fid: 0, afid: NOFID, uname: '', aname: '', nUname: 0 }));
    await rpc(message('Twalk', { tag: 2, fid: 0, newfid: 1, wnames: [b('f')] }));
    await rpc(message('Tlopen', { tag: 3, fid: 1, flags: O.RDONLY }));
    const r = await rpc(message('Tread', { tag: 4, fid: 1, offset: 0n, count: 100 }));
    assert.ok(isMessage(r, 'Rread'));
    assert.equal(r.data.toString(), 'over a pipe');
    p.stdin.end();
    assert.equal(await exited, 0);
    assert.match(stderr, /serving .* on stdio/);
    rmSync(root, { recursive: true, force: true });
  });
});

describe('export policy', () => {
  test('a readonly export refuses every change with EROFS and still serves reads', async () => {
    const fx = await startFixture({ readonly: true });
    writeFileSync(join(fx.root, 'f'), 'ro');
    const c = await WireClient.attach(fx.port);
    await c.walk(0, 1, 'f');
    await rejectsWith(c.rpc('Tlopen', { fid: 1, flags: O.RDWR }), Errno.EROFS);
    await rejectsWith(c.rpc('Tlopen', { fid: 1, flags: O.RDONLY | O.TRUNC }), Errno.EROFS);
    await c.rpc('Tlopen', { fid: 1, flags: O.RDONLY });
    assert.equal((await c.rpc('Tread', { fid: 1, offset: 0n, count: 10 })).data.toString(), 'ro');
    await c.walk(0, 2, '');
    await rejectsWith(c.rpc('Tlcreate', { fid: 2, name: b('new'), flags: O.RDWR, mode: 0o644, gid: 0 }), Errno.EROFS);
    await rejectsWith(c.rpc('Tmkdir', { dfid: 0, name: b('d'), mode: 0o755, gid: 0 }), Errno.EROFS);
    await rejectsWith(c.rpc('Tunlinkat', { dfid: 0, name: b('f'), flags: 0 }), Errno.EROFS);
    await rejectsWith(c.rpc('Trenameat', { oldDirFid: 0, oldName: b('f'), newDirFid: 0, newName: b('g') }), Errno.EROFS);
    await rejectsWith(c.rpc('Tsymlink', { fid: 0, name: b('s'), target: b('f'), gid: 0 }), Errno.EROFS);
    await rejectsWith(c.rpc('Tsetattr', { fid: 1, valid: 1, mode: 0o777, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n }), Errno.EROFS);
    await rejectsWith(c.rpc('Txattrcreate', { fid: 2, name: b('user.x'), attrSize: 1n, flags: 0 }), Errno.EROFS);
    await c.rpc('Tgetattr', { fid: 1, requestMask: 0x7ffn });
    await c.rpc('Tstatfs', { fid: 0 });
    assert.equal(readFileSync(join(fx.root, 'f'), 'utf8'), 'ro');
    c.close();
    await fx.close();
  });
});

describe('--debug', () => {
  test('traces one line per request and one per reply', async () => {
    const lines: string[] = [];
    const fx = await startFixture({ trace: (_c, l) => lines.push(l) });
    const c = await WireClient.attach(fx.port);
    await c.rpc('Tgetattr', { fid: 0, requestMask: 0x7ffn });
    await c.rpc('Tclunk', { fid: 99 }).catch(() => {});
    c.close();
    await fx.close();
    assert.deepEqual(
      lines.map((l) => l.split(' ')[1]),
      ['Tversion', 'Rversion', 'Tattach', 'Rattach', 'Tgetattr', 'Rgetattr', 'Tclunk', 'Rlerror'],
    );
    assert.match(lines.at(-1)!, /EBADF/);
  });
});
