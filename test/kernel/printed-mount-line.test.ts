import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runGuest } from './qemu-guest.js';
import { repoRoot, startNpmStart } from './virtfs-process.js';

test('`npm start` serves ./share, and a QEMU guest on user networking mounts it with the exact line printed', { timeout: 10 * 60_000 }, async () => {
  const share = join(repoRoot, 'share');
  // ./share is the user's (and ignored by git): leave it as it was found.
  const hadShare = existsSync(share);
  const name = `greeting-${process.pid}`;
  try {
    // The README's command, on a free port rather than 5640 so that a running server does not
    // fail the suite; everything else is as a user gets it.
    const server = await startNpmStart(['--listen', 'tcp:127.0.0.1:0']);
    const printed = /^\s*(mount -t 9p .*)$/m.exec(server.stdout())?.[1];
    assert.ok(printed, `no mount line in:\n${server.stdout()}`);
    assert.match(printed, / 10\.0\.2\.2 \/mnt$/);
    let result;
    try {
      result = await runGuest({ port: server.port, mountCommand: printed, script: `echo "from the guest" > ${name}\ncheck listed ls -la .\n`, timeoutMs: 5 * 60_000 });
    } finally {
      await server.stop();
    }
    assert.equal(result.mounted, true, result.console.split('\n').slice(-20).join('\n'));
    assert.equal(result.checks.get('listed')?.ok, true);
    assert.equal(result.checks.get('umount')?.ok, true);
    assert.ok(server.stdout().includes(`serving ${share} (read-write, passthrough)`), server.stdout());
    assert.equal(readFileSync(join(share, name), 'utf8'), 'from the guest\n');
  } finally {
    rmSync(hadShare ? join(share, name) : share, { recursive: true, force: true });
  }
});
