import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';

// A full disk reaches the guest as an error, and nothing the guest was told is written is
// missing on the host: a small tmpfs fails writes as they come (ENOSPC at write), and ext4 on a
// loop device whose backing file sits on a full tmpfs fails them later, at writeback (the error
// arrives only at fsync). Both need root (mount, losetup), as the kernel suite runs.

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/**
 * Fill the disk 64 KiB at a time, each block written and fsynced by its own dd, so that `copied`
 * is exactly what the guest was told is on disk (busybox dd reports nothing when a write fails).
 */
const FILL = (cacheNote: string) => `
# ${cacheNote}
i=0; rc=0
while [ $i -lt 128 ]; do
  dd if=/dev/urandom of=data bs=64k count=1 seek=$i conv=notrunc,fsync 2>/tmp/dd.err || { rc=$?; break; }
  i=$((i + 1))
done
echo "VALUE dd-rc $rc"
echo "VALUE dd-err $(grep -o -e 'No space left on device' -e 'I/O error' /tmp/dd.err | head -n 1)"
echo "VALUE copied $((i * 65536))"
echo "VALUE size $(stat -c %s data)"
echo "VALUE md5 $(md5sum data | cut -d' ' -f1)"
rm ballast && echo after > after && echo "VALUE after $(cat after)"
echo "VALUE listing $(ls | tr '\\n' ' ')"
`;

interface Scenario {
  dir: string;
  result: GuestResult;
  /** The host file's bytes as the guest finished (read before cleanup). */
  hostData: Buffer | null;
  cleanup: () => void;
}

/** A fresh export on a tmpfs of `size`, holding 512 KiB of ballast the guest frees after the error. */
function smallTmpfs(size: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-faults-'));
  sh('mount', '-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir);
  writeFileSync(join(dir, 'ballast'), Buffer.alloc(512 << 10, 1));
  return { dir, cleanup: () => (sh('umount', dir), rmSync(dir, { recursive: true, force: true })) };
}

/** ext4 on a loop device over a 16 MiB sparse file on a 3 MiB tmpfs: writes are taken, writeback fails. */
function overcommittedExt4(): { dir: string; cleanup: () => void } {
  const base = mkdtempSync(join(tmpdir(), 'virtfs-faults-'));
  const backing = join(base, 'tmpfs');
  const dir = join(base, 'export');
  mkdirSync(backing);
  mkdirSync(dir);
  sh('mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', backing);
  sh('truncate', '-s', '16M', join(backing, 'disk'));
  const loop = sh('losetup', '-f', '--show', join(backing, 'disk'));
  sh('mkfs.ext4', '-q', loop);
  sh('mount', loop, dir);
  writeFileSync(join(dir, 'ballast'), Buffer.alloc(512 << 10, 1));
  return {
    dir,
    cleanup: () => {
      sh('umount', dir);
      sh('losetup', '-d', loop);
      sh('umount', backing);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

async function run(fs: { dir: string; cleanup: () => void }, script: string, mountOptions = ''): Promise<Scenario> {
  try {
    const server = await startVirtfs(fs.dir);
    let result: GuestResult;
    try {
      result = await runGuest({ port: server.port, script, mountOptions, timeoutMs: 5 * 60_000 });
    } finally {
      await server.stop();
    }
    let hostData: Buffer | null = null;
    try {
      hostData = readFileSync(join(fs.dir, 'data'));
    } catch {
      hostData = null;
    }
    return { dir: fs.dir, result, hostData, cleanup: fs.cleanup };
  } catch (err) {
    fs.cleanup();
    throw err;
  }
}

function finished(s: Scenario): Map<string, string> {
  const tail = s.result.console.split('\n').slice(-30).join('\n');
  assert.equal(s.result.finished, true, `guest did not finish:\n${tail}`);
  return s.result.values;
}

describe('a full disk under the kernel client', { timeout: 20 * 60_000 }, () => {
  let direct: Scenario;
  let cached: Scenario;
  let late: Scenario;

  before(async () => {
    direct = await run(smallTmpfs('4m'), FILL('cache=none: every write goes to the server as it is made'));
    cached = await run(smallTmpfs('4m'), FILL('cache=loose: writes land in the guest page cache; the error comes at writeback'), ',cache=loose');
    late = await run(overcommittedExt4(), FILL('the host takes the writes into its page cache and fails them at its writeback'));
  });

  after(() => {
    for (const s of [direct, cached, late]) s?.cleanup();
  });

  test('cache=none: dd fails with ENOSPC; every byte it was told is written is in the host file, which reads back the same', () => {
    const v = finished(direct);
    assert.notEqual(v.get('dd-rc'), '0');
    assert.equal(v.get('dd-err'), 'No space left on device');
    const host = direct.hostData!;
    assert.ok(host.length > 1 << 20, `only ${host.length} bytes reached the host`);
    const copied = Number(v.get('copied') || NaN);
    assert.ok(copied > 0 && copied <= host.length, `dd was told ${v.get('copied')} bytes were written, the host has ${host.length}`);
    assert.equal(Number(v.get('size')), host.length);
    assert.equal(v.get('md5'), md5(host));
  });

  test('cache=loose: the guest’s page cache took the writes; the error reaches dd at fsync, never a success', () => {
    const v = finished(cached);
    assert.notEqual(v.get('dd-rc'), '0');
    assert.equal(v.get('dd-err'), 'No space left on device');
    assert.ok(cached.hostData!.length < 128 * 65536);
  });

  test('writeback failing on the host reaches the guest’s fsync as an error, not as success', () => {
    const v = finished(late);
    assert.notEqual(v.get('dd-rc'), '0', 'dd conv=fsync succeeded though the host could not write the data');
    assert.match(v.get('dd-err') ?? '', /No space left on device|I\/O error/);
  });

  test('the server keeps serving after each error: space freed, a new file is written and listed', () => {
    for (const s of [direct, cached]) {
      const v = finished(s);
      assert.equal(v.get('after'), 'after');
      assert.equal(readFileSync(join(s.dir, 'after'), 'utf8'), 'after\n');
    }
    assert.match(finished(late).get('listing') ?? '', /data/);
    assert.ok(statSync(direct.dir).isDirectory());
  });
});
