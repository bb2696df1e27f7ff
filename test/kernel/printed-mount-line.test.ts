import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runGuest } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';

test('a QEMU guest on user networking mounts the export with the exact line virtfs prints', { timeout: 10 * 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-printed-'));
  const share = join(dir, 'share');
  try {
    // As `npm start` does: the directory does not exist yet and --create makes it.
    const server = await startVirtfs(share, ['--create']);
    const printed = /^\s*(mount -t 9p .*)$/m.exec(server.stdout())?.[1];
    assert.ok(printed, `no mount line in:\n${server.stdout()}`);
    assert.match(printed, / 10\.0\.2\.2 \/mnt$/);
    let result;
    try {
      result = await runGuest({ port: server.port, mountCommand: printed, script: 'echo "from the guest" > greeting\ncheck listed ls -la .\n', timeoutMs: 5 * 60_000 });
    } finally {
      await server.stop();
    }
    assert.equal(result.mounted, true, result.console.split('\n').slice(-20).join('\n'));
    assert.equal(result.checks.get('listed')?.ok, true);
    assert.equal(result.checks.get('umount')?.ok, true);
    assert.ok(existsSync(share));
    assert.equal(readFileSync(join(share, 'greeting'), 'utf8'), 'from the guest\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
