import assert from 'node:assert/strict';
import { test } from 'node:test';
import { soak } from '../soak/soak.js';

// The soak script (test/soak/soak.ts) kept honest: a short run of it in every `npm test`. Its
// ten-minute result is in docs/soak.md.
test('a short soak: 4 clients of mixed operations lose nothing, and the server gives back every descriptor', { timeout: 120_000 }, async () => {
  const r = await soak({ seconds: 12, clients: 4 });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.lost, []);
  assert.ok(r.verified > 20, `only ${r.verified} files verified`);
  assert.ok(Object.values(r.ops).reduce((a, b) => a + b, 0) > 200, JSON.stringify(r.ops));
  assert.ok(r.final.fds <= r.samples[0]!.fds + 1, `descriptors: ${r.samples[0]!.fds} before, ${r.final.fds} after the clients left`);
  assert.ok(Math.max(...r.samples.map((s) => s.rssKiB)) < 512 * 1024, 'server RSS above 512 MiB');
});
