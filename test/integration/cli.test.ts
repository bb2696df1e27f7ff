import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { startVirtfs } from '../kernel/virtfs-process.js';
import { Errno, type P9Error } from '../../src/protocol/errno.js';
import { WireClient } from './wire-client.js';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const virtfs = (...args: string[]) => run(process.execPath, [main, ...args], { timeout: 15_000 });

/** The command fails with exit status 1 and exactly one line on stderr matching `line`. */
async function failsWith(args: string[], line: RegExp): Promise<void> {
  await assert.rejects(virtfs(...args), (e: { code: number; stderr: string; stdout: string }) => {
    assert.equal(e.code, 1, `exit status for ${args.join(' ')}`);
    assert.equal(e.stdout, '');
    const lines = e.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, `one line on stderr, got:\n${e.stderr}`);
    assert.match(lines[0]!, line);
    return true;
  });
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'virtfs-cli-'));
  writeFileSync(join(dir, 'plain-file'), '');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('virtfs serve: options and errors', () => {
  test('--help documents every option', async () => {
    const { stdout } = await virtfs('serve', '--help');
    for (const opt of ['--listen', 'tcp:HOST:PORT', 'unix:PATH', 'stdio', '--readonly', '--msize', '--max-fids', '--max-requests', '--create', '--debug', '--security-model', 'mapped-xattr', '--fmode', '--dmode', '--user', '--max-reply-queue', '--max-xattr-bytes', '--max-connections', '--handshake-timeout', '--frame-timeout', '--max-lock-waiters', '--max-lock-waiters-per-connection', '--max-descriptors', '--allow-privileged', '--socket-mode', '--no-warm-up']) {
      assert.ok(stdout.includes(opt), `--help mentions ${opt}`);
    }
    // commander wraps the help to the terminal's width, so a line may break anywhere between words.
    assert.match(stdout, /default:\s+"tcp:127\.0\.0\.1:5640"/);
  });

  test('a missing path is one clear line', async () => {
    await failsWith(['serve', join(dir, 'absent')], /^virtfs: .*absent: no such directory \(--create makes it\)$/);
  });

  test('a path that is not a directory is one clear line', async () => {
    await failsWith(['serve', join(dir, 'plain-file')], /^virtfs: .*plain-file: not a directory$/);
  });

  test('no path at all is one clear line', async () => {
    await failsWith(['serve'], /^virtfs: missing required argument 'path' \(see --help\)$/);
  });

  test('an unknown security model, a bad mode or an unknown user is one clear line', async () => {
    await failsWith(['serve', '--security-model', 'mapped-dir', dir], /^virtfs: .*"mapped-dir" is not one of passthrough, mapped-xattr, mapped-file, none \(or mapped\).*\(see --help\)$/);
    await failsWith(['serve', '--fmode', '0999', dir], /^virtfs: .*"0999" is not an octal mode such as 0600.*$/);
    await failsWith(['serve', '--user', 'no-such-user-here', dir], /^virtfs: .*no user named "no-such-user-here".*$/);
  });

  test('--user drops root once listening: the server runs, and creates, as that user', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
    const { chownSync, statSync } = await import('node:fs');
    const d = mkdtempSync(join(tmpdir(), 'virtfs-cli-user-'));
    chownSync(d, 65534, 65534);
    const server = await startVirtfs(d, ['--user', 'nobody', '--security-model', 'mapped']);
    try {
      assert.match(server.stdout(), /mapped-xattr, as uid 65534\)/);
      const c = await WireClient.attach(server.port, 0);
      await c.walk(0, 1, '');
      await c.rpc('Tlcreate', { fid: 1, name: Buffer.from('made'), flags: 2, mode: 0o644, gid: 0 });
      c.close();
      assert.equal(statSync(join(d, 'made')).uid, 65534);
    } finally {
      await server.stop();
      rmSync(d, { recursive: true, force: true });
    }
  });

  test('an unknown option is one clear line', async () => {
    await failsWith(['serve', '--bogus', dir], /^virtfs: unknown option '--bogus' \(see --help\)$/);
  });

  test('bad option values are one clear line each', async () => {
    await failsWith(['serve', '--msize', '100', dir], /^virtfs: .*--msize.*must be between 4096 and/);
    await failsWith(['serve', '--msize', 'lots', dir], /^virtfs: .*--msize.*"lots" is not a whole number/);
    await failsWith(['serve', '--max-fids', '0', dir], /^virtfs: .*--max-fids.*must be between 1 and/);
    await failsWith(['serve', '--listen', 'udp:1.2.3.4:5', dir], /^virtfs: .*--listen.*expected tcp:HOST:PORT, unix:PATH or stdio/);
    await failsWith(['serve', '--listen', 'tcp:127.0.0.1:70000', dir], /^virtfs: .*port 70000 is out of range/);
  });

  test('SIGTERM sent the moment the mount line appears closes the server cleanly (status 0)', async () => {
    // Whoever starts the server waits for that line; a signal before the handler is in place
    // would kill it with no close and no status.
    for (let i = 0; i < 5; i++) {
      const server = await startVirtfs(dir);
      assert.equal(await server.stop(), 0, `start ${i + 1}: stderr:\n${server.stderr()}`);
    }
  });

  test('an address already in use is one clear line', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await failsWith(['serve', '--listen', `tcp:127.0.0.1:${port}`, dir], new RegExp(`^virtfs: cannot listen on tcp:127\\.0\\.0\\.1:${port}: address already in use`));
    } finally {
      busy.close();
    }
  });

  test('a Unix socket in a missing directory is one clear line', async () => {
    await failsWith(['serve', '--listen', `unix:${dir}/no/such/s`, dir], /^virtfs: cannot listen on unix:.*: .*no such directory$/);
  });

  test('a Unix socket path held by an ordinary file is refused, and the file is kept', async () => {
    await failsWith(['serve', '--listen', `unix:${join(dir, 'plain-file')}`, dir], /exists and is not a socket$/);
  });

  test('an address beyond loopback is used only when asked, and the server warns', async () => {
    const wide = await startVirtfs(dir, ['--listen', 'tcp:0.0.0.0:0']);
    try {
      assert.match(wide.stdout(), /on tcp:0\.0\.0\.0:\d+\n/);
      assert.match(wide.stdout(), /warning: listening beyond this machine/);
      assert.match(wide.stdout(), /mount -t 9p -o trans=tcp,port=\d+,version=9p2000\.L,msize=1048576 HOST-ADDRESS \/mnt/);
    } finally {
      await wide.stop();
    }
    const local = await startVirtfs(dir);
    try {
      assert.doesNotMatch(local.stdout(), /warning: listening beyond/);
    } finally {
      await local.stop();
    }
  });

  test('a hard descriptor limit that is still low is warned about', async () => {
    const low = await startVirtfs(dir, [], { fdLimit: 2000 });
    try {
      assert.match(low.stdout(), /warning: the descriptor limit is 2000 /);
    } finally {
      await low.stop();
    }
  });

  test('with a descriptor limit of 64, lookups never run out (idle ones are reclaimed); opens past it are EMFILE until clunked', async () => {
    for (let i = 0; i < 100; i++) writeFileSync(join(dir, `many-${i}`), `${i}`);
    const srv = await startVirtfs(dir, [], { fdLimit: 64 });
    try {
      const c = await WireClient.attach(srv.port);
      await Promise.all(Array.from({ length: 100 }, (_, i) => c.walk(0, i + 1, `many-${i}`)));
      for (let i = 0; i < 100; i++) await c.rpc('Tgetattr', { fid: i + 1, requestMask: 0x7ffn });
      // An open file holds its own descriptor: those are what can run out.
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => c.rpc('Tlopen', { fid: i + 1, flags: 0 }).then(() => 0, (e: P9Error) => e.errno)));
      assert.ok(results.includes(0), 'some opens succeed');
      assert.ok(results.includes(Errno.EMFILE), 'the rest fail with EMFILE');
      assert.deepEqual([...new Set(results)].sort(), [0, Errno.EMFILE].sort());
      for (let i = 0; i < 100; i++) if (results[i] === 0) await c.rpc('Tclunk', { fid: i + 1 });
      await c.walk(0, 200, 'many-99');
      await c.rpc('Tlopen', { fid: 200, flags: 0 });
      // And another client is served.
      const d = await WireClient.attach(srv.port);
      await d.walk(0, 1, 'many-0');
      c.close();
      d.close();
    } finally {
      await srv.stop();
    }
  });
});
