import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';

const here = new URL('.', import.meta.url);
// The script lives next to the sources; compiled tests run from dist/test/kernel.
const scriptPath = new URL('../../../test/kernel/workload.sh', here);
const script = readFileSync(scriptPath, 'utf8');
/** Every check the script makes must come back ok: a check that never ran is a failure too. */
const expectedChecks = [...script.matchAll(/^\s*(?:check|expect_eq)\s+(\S+)/gm)].map((m) => m[1]!);

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

/**
 * The same workload under each of the client's cache modes: none (the default: every operation
 * goes to the server), loose (page cache, writeback through a separate fid) and mmap (shared
 * writable mappings, as a root filesystem needs).
 */
const cacheModes = ['none', 'loose', 'mmap'] as const;

for (const cache of cacheModes) describe(`the Linux kernel client mounts virtfs over tcp (cache=${cache}) and runs a workload`, { timeout: 15 * 60_000 }, () => {
  let dir: string;
  let result: GuestResult;
  let hostData: Buffer;
  let bigNames: string[];
  let serverLog = '';
  let values = new Map<string, string>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtfs-kernel-'));
    mkdirSync(join(dir, 'big'));
    bigNames = Array.from({ length: 5000 }, (_, i) => `entry-${i}-${'x'.repeat(i % 40)}`);
    for (const n of bigNames) writeFileSync(join(dir, 'big', n), '');
    hostData = randomBytes(4 << 20);
    writeFileSync(join(dir, 'hostdata'), hostData);
    const server = await startVirtfs(dir);
    try {
      result = await runGuest({ port: server.port, script, mountOptions: cache === 'none' ? '' : `,cache=${cache}`, timeoutMs: 12 * 60_000 });
    } finally {
      await server.stop();
      serverLog = server.stderr();
    }
    values = result.values;
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the guest mounts the export and finishes the workload', () => {
    const tail = result.console.split('\n').slice(-40).join('\n');
    assert.equal(result.mounted, true, `mount failed:\n${tail}`);
    assert.equal(result.timedOut, false, `guest timed out:\n${tail}`);
    assert.equal(result.finished, true, `workload did not finish:\n${tail}`);
  });

  test(`the guest's mount uses cache=${cache}`, () => {
    const line = values.get('mount-line') ?? '';
    assert.match(line, /^10\.0\.2\.100_\/mnt_9p_/, line);
    // 6.1 lists the mode as a bare word among the options (",loose,"); none lists nothing.
    const modes = [...line.matchAll(/[,_](?:cache=)?(loose|mmap|fscache)(?=[,_])/g)].map((m) => m[1]);
    assert.deepEqual(modes, cache === 'none' ? [] : [cache], line);
  });

  for (const name of expectedChecks) {
    test(`guest check: ${name}`, () => {
      const c = result.checks.get(name);
      assert.ok(c, `check ${name} never reported`);
      assert.equal(c.ok, true, `${name}: ${c.detail}`);
    });
  }

  test('the guest unmounts cleanly', () => {
    const c = result.checks.get('umount');
    assert.ok(c && c.ok, `umount: ${c?.detail ?? 'not reported'}`);
  });

  test('a 5,000-entry directory is listed completely, every name exactly once', () => {
    const expected = md5(`${[...bigNames].sort().join('\n')}\n`);
    assert.equal(values.get('big-dir-names-md5'), expected);
  });

  test('a 4 MiB file written on the host reads back in the guest with the same checksum', () => {
    assert.equal(values.get('host-file-md5'), md5(hostData));
  });

  test('a 3 MiB file written in the guest has the same checksum on the host', () => {
    const onHost = readFileSync(join(dir, 'guestdata'));
    assert.equal(onHost.length, 3 << 20);
    assert.equal(values.get('guest-file-md5'), md5(onHost));
  });

  if (cache === 'none') {
    test('a shared writable mapping is refused without a page cache (use cache=mmap)', () => {
      assert.match(values.get('mmap-write') ?? '', /^failed: mmap: Invalid argument/);
    });
  } else {
    test('a file written through a shared writable mapping reaches the host byte for byte', () => {
      assert.equal(values.get('mmap-write'), 'ok');
      const onHost = readFileSync(join(dir, 'mapped'));
      assert.equal(onHost.length, 1 << 20);
      assert.ok(onHost.equals(Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => i % 251))));
    });
  }

  test('chmod, chown and touch from the guest are real on the host', () => {
    const st = statSync(join(dir, 'h1'));
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.uid, 1234);
    assert.equal(st.gid, 5678);
    assert.equal(Math.floor(st.mtimeMs / 1000), 981173106);
  });

  test('hard links share an inode on the host', () => {
    assert.equal(statSync(join(dir, 'h1')).ino, statSync(join(dir, 'h2')).ino);
  });

  test('a symlink the guest makes to /etc/passwd is a plain symlink on the host, never followed', () => {
    assert.equal(lstatSync(join(dir, 'escape')).isSymbolicLink(), true);
    assert.equal(readlinkSync(join(dir, 'escape')), '/etc/passwd');
  });

  test('the fifo the guest made is a fifo on the host', () => {
    assert.equal(lstatSync(join(dir, 'p1')).isFIFO(), true);
  });

  test('renames and removals are real on the host', () => {
    assert.equal(readFileSync(join(dir, 'rb', 'y'), 'utf8'), 'one\n');
    assert.throws(() => lstatSync(join(dir, 'ra', 'x')));
    assert.throws(() => lstatSync(join(dir, 'u1')));
    assert.equal(readFileSync(join(dir, 'd1moved', 'inner'), 'utf8'), 'in\n');
  });

  test('the server logged no errors', () => {
    assert.doesNotMatch(serverLog, /"level":(50|60)/, serverLog);
  });
});
