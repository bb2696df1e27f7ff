import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { LinuxOpenFlag as O, SetattrValid } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { rejectsWith } from './assertions.js';
import { b, WireClient } from './wire-client.js';

// Most users run virtfs as themselves, not as root: the server's own user then owns what it
// creates, chown and device nodes are refused, and O_NOATIME on others' files falls back. The
// suite runs as root, so the server here drops to nobody first.
const NOBODY = 65534;
const child = fileURLToPath(new URL('./unprivileged-server.js', import.meta.url));

describe('a server running as an ordinary user', { skip: process.getuid?.() !== 0 ? 'the suite must run as root to start a server as another user' : false }, () => {
  let dir: string;
  let server: ChildProcess;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtfs-unpriv-'));
    chmodSync(dir, 0o755);
    chownSync(dir, NOBODY, NOBODY);
    writeFileSync(join(dir, 'roots-file'), 'owned by root');
    chmodSync(join(dir, 'roots-file'), 0o644);
    server = spawn(process.execPath, [child, dir, String(NOBODY), String(NOBODY)], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /port=(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
  });

  after(() => {
    server?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  test('what a guest creates belongs to the server user, whoever attached', async () => {
    const c = await WireClient.attach(port, 1000);
    await c.walk(0, 1, '');
    await c.rpc('Tlcreate', { fid: 1, name: b('made'), flags: O.RDWR, mode: 0o640, gid: 1000 });
    await c.rpc('Tmkdir', { dfid: 0, name: b('made-dir'), mode: 0o750, gid: 1000 });
    for (const n of ['made', 'made-dir']) {
      const st = lstatSync(join(dir, n));
      assert.deepEqual([st.uid, st.gid], [NOBODY, NOBODY], n);
    }
    assert.equal(statSync(join(dir, 'made')).mode & 0o777, 0o640);
    c.close();
  });

  test('chmod works on its own files; chown to another user is EPERM', async () => {
    const c = await WireClient.attach(port, 0);
    await c.walk(0, 1, 'made');
    const setattr = { mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };
    await c.rpc('Tsetattr', { fid: 1, ...setattr, valid: SetattrValid.MODE, mode: 0o600 });
    assert.equal(statSync(join(dir, 'made')).mode & 0o777, 0o600);
    await rejectsWith(c.rpc('Tsetattr', { fid: 1, ...setattr, valid: SetattrValid.UID, uid: 1234 }), Errno.EPERM);
    assert.equal(statSync(join(dir, 'made')).uid, NOBODY);
    c.close();
  });

  test('device nodes are EPERM; fifos are made', async () => {
    const c = await WireClient.attach(port, 0);
    await rejectsWith(c.rpc('Tmknod', { dfid: 0, name: b('dev'), mode: 0o20644, major: 1, minor: 3, gid: 0 }), Errno.EPERM);
    await c.rpc('Tmknod', { dfid: 0, name: b('pipe'), mode: 0o10644, major: 0, minor: 0, gid: 0 });
    assert.ok(lstatSync(join(dir, 'pipe')).isFIFO());
    c.close();
  });

  test("O_NOATIME on another user's file falls back to a plain open", async () => {
    const c = await WireClient.attach(port, 0);
    await c.walk(0, 1, 'roots-file');
    await c.rpc('Tlopen', { fid: 1, flags: O.RDONLY | O.NOATIME });
    const r = await c.rpc('Tread', { fid: 1, offset: 0n, count: 100 });
    assert.equal(r.data.toString(), 'owned by root');
    // Writing to it is the host's permission check, not the client's: EACCES.
    await c.walk(0, 2, 'roots-file');
    await rejectsWith(c.rpc('Tlopen', { fid: 2, flags: O.WRONLY }), Errno.EACCES);
    c.close();
  });
});
