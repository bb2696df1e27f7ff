import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Connection } from '../../src/client/connection.js';
import { decode, encode, message } from '../../src/protocol/codec.js';
import { LinuxOpenFlag as O, XattrFlag } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { FrameSplitter } from '../../src/protocol/frame-splitter.js';
import { startFixture, type Fixture } from './server-fixture.js';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let fx: Fixture;
before(async () => {
  fx = await startFixture();
});
after(async () => {
  await fx.close();
});

describe('client library against the server', () => {
  test('readAll returns a multi-MiB file exactly, with reads pipelined', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    writeFileSync(join(fx.root, 'big'), data);
    const c = await Client.connect(fx.address, { msize: 65536 });
    const root = await c.attach({ nUname: 0 });
    const { fid } = await c.walkPath(root, 'big');
    await c.open(fid);
    assert.ok((await c.readAll(fid)).equals(data));
    c.close();
  });

  test('writeAll stores a multi-MiB buffer exactly', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const c = await Client.connect(fx.address, { msize: 65536 });
    const root = await c.attach({ nUname: 0 });
    const { fid } = await c.walk(root, []);
    await c.create(fid, 'written', O.RDWR, 0o644);
    await c.writeAll(fid, data);
    assert.ok(readFileSync(join(fx.root, 'written')).equals(data));
    c.close();
  });

  test('a walk of 20 names is sent as 16 and then 4', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `w${i}`);
    mkdirSync(join(fx.root, ...names), { recursive: true });
    const c = await Client.connect(fx.address);
    const root = await c.attach({ nUname: 0 });
    const r = await c.walk(root, names);
    assert.equal(r.qids.length, 20);
    c.close();
  });

  test('a missing name rejects with ENOENT and frees the new fid', async () => {
    const c = await Client.connect(fx.address);
    const root = await c.attach({ nUname: 0 });
    await assert.rejects(c.walkPath(root, 'w0/nope'), { errno: Errno.ENOENT });
    assert.equal(c.newFid(), root + 1);
    c.close();
  });

  test('xattrs can be set, read, listed and removed', async () => {
    writeFileSync(join(fx.root, 'x'), '');
    const c = await Client.connect(fx.address);
    const root = await c.attach({ nUname: 0 });
    const { fid } = await c.walkPath(root, 'x');
    await c.xattrSet(fid, 'user.colour', Buffer.from('blue'));
    assert.equal((await c.xattrGet(fid, 'user.colour')).toString(), 'blue');
    assert.ok((await c.xattrList(fid)).includes('user.colour'));
    // XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one.
    await assert.rejects(c.xattrSet(fid, 'user.colour', Buffer.from('red'), XattrFlag.CREATE), { errno: Errno.EEXIST });
    await assert.rejects(c.xattrSet(fid, 'user.shade', Buffer.from('red'), XattrFlag.REPLACE), { errno: Errno.ENODATA });
    await c.xattrSet(fid, 'user.colour', Buffer.from('green'), XattrFlag.REPLACE);
    assert.equal((await c.xattrGet(fid, 'user.colour')).toString(), 'green');
    await c.xattrRemove(fid, 'user.colour');
    await assert.rejects(c.xattrGet(fid, 'user.colour'), { errno: Errno.ENODATA });
    await assert.rejects(c.xattrRemove(fid, 'user.colour'), { errno: Errno.ENODATA });
    c.close();
  });

  test('an xattr value over 64 KiB is refused with E2BIG', async () => {
    const c = await Client.connect(fx.address);
    const root = await c.attach({ nUname: 0 });
    const { fid } = await c.walkPath(root, 'x');
    await assert.rejects(c.xattrSet(fid, 'user.big', Buffer.alloc(65537)), { errno: Errno.E2BIG });
    c.close();
  });

  test('a server that answers "unknown" to Tversion is refused', async () => {
    await assert.rejects(Client.connect(fx.address, { version: '9P2000.u' }), /does not speak 9P2000.L/);
  });

  test('tags are reused lowest-first once replies arrive', async () => {
    const c = await Client.connect(fx.address);
    const root = await c.attach({ nUname: 0 });
    const seen: number[] = [];
    const origWrite = (c.conn as unknown as { stream: net.Socket }).stream;
    const write = origWrite.write.bind(origWrite);
    origWrite.write = ((b: Buffer) => {
      seen.push(b.readUInt16LE(5));
      return write(b);
    }) as typeof origWrite.write;
    await Promise.all([c.getattr(root), c.getattr(root), c.getattr(root)]);
    await c.getattr(root);
    assert.deepEqual(seen, [0, 1, 2, 0]);
    c.close();
  });
});

describe('client library against a scripted peer', () => {
  /** A server that answers Tversion, then replies to everything else with a wrong tag. */
  async function liar(): Promise<{ port: number; close(): void }> {
    const srv = net.createServer((s) => {
      const split = new FrameSplitter({ frame: (f) => {
        const m = decode(Buffer.from(f));
        if (m.type === 100) s.write(encode(message('Rversion', { tag: m.tag, msize: 8192, version: '9P2000.L' })));
        else s.write(encode(message('Rclunk', { tag: m.tag + 100 })));
      }, oversized: () => {}, malformed: () => {} }, () => 1 << 20);
      s.on('data', (c) => split.push(c));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
  }

  test('a reply with an unknown tag breaks the connection and fails every pending request', async () => {
    const l = await liar();
    const conn = await Connection.open(`tcp:127.0.0.1:${l.port}`);
    const c = await Client.connect(conn);
    const results = await Promise.allSettled([c.clunk(1), c.clunk(2)]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.match(String((r as PromiseRejectedResult).reason), /unknown tag|connection closed/);
    }
    l.close();
  });
});

describe('client commands', () => {
  const cli = (...args: string[]) => run(process.execPath, [main, ...args]);

  test('virtfs put then cat round-trips a file', async () => {
    writeFileSync(join(fx.root, 'local-src'), 'from a local file\n');
    await cli('put', fx.address, 'copied', join(fx.root, 'local-src'));
    assert.equal(readFileSync(join(fx.root, 'copied'), 'utf8'), 'from a local file\n');
    const { stdout } = await cli('cat', fx.address, 'copied');
    assert.equal(stdout, 'from a local file\n');
  });

  test('virtfs put over an existing file replaces its content', async () => {
    writeFileSync(join(fx.root, 'replace-me'), 'a much longer original content');
    writeFileSync(join(fx.root, 'short'), 'short');
    await cli('put', fx.address, 'replace-me', join(fx.root, 'short'));
    assert.equal(readFileSync(join(fx.root, 'replace-me'), 'utf8'), 'short');
  });

  test('virtfs ls lists names with type and mode', async () => {
    mkdirSync(join(fx.root, 'listing'));
    writeFileSync(join(fx.root, 'listing', 'one'), '1');
    mkdirSync(join(fx.root, 'listing', 'two'));
    const { stdout } = await cli('ls', fx.address, 'listing');
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^-0\d{3} .* one$/);
    assert.match(lines[1]!, /^d0\d{3} .* two$/);
  });

  test('virtfs stat prints every attribute', async () => {
    const { stdout } = await cli('stat', fx.address, 'copied');
    for (const key of ['qid', 'mode', 'uid', 'gid', 'nlink', 'size', 'mtime', 'btime']) assert.match(stdout, new RegExp(`^${key} `, 'm'));
    assert.match(stdout, /^size\s+18$/m);
  });

  test('a missing path is one clear error line and exit status 1', async () => {
    await assert.rejects(cli('cat', fx.address, 'nope'), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.equal(e.stderr, 'virtfs: cat nope: No such file or directory (ENOENT)\n');
      return true;
    });
  });
});
