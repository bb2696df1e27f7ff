import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { openReadingFiles } from '../../src/backend/local/dirty-pages.js';
import { openFdCount } from '../../src/backend/local/sys.js';
import { securityModelNames } from '../../src/backend/local/security-model.js';
import { startWarmUp } from '../../src/warm-up.js';

const scratches = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('virtfs-warm-up-')));

/** A logger whose debug lines land in `lines`, parsed. */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }), lines };
}

let before0: Set<string>;
before(() => {
  before0 = scratches();
  // The dirty-page gauge's files stand open from the first export on, for the process's life.
  openReadingFiles();
});
after(() => assert.deepEqual(scratches(), before0, 'every scratch directory removed'));

for (const model of securityModelNames) {
  test(`the warm-up sends its requests through a server with the ${model} model, and leaves nothing behind`, async () => {
    const { log, lines } = capture();
    const fds = openFdCount();
    const w = startWarmUp({ security: { model }, requests: 400, log });
    await w.done;
    const ended = lines.find((l) => l.msg === 'warm-up ended early');
    assert.equal(ended, undefined, `ended early: ${JSON.stringify(ended)}`);
    const done = lines.find((l) => l.msg === 'warmed up');
    assert.ok(done, 'it says it has warmed up');
    assert.ok((done.requests as number) >= 400, `${String(done.requests)} requests`);
    assert.deepEqual(scratches(), before0, 'its scratch directory is gone');
    assert.equal(openFdCount(), fds, 'no descriptor left open');
  });
}

test('the warm-up holds at most 32 descriptors of its own, plus its root and its unix socket\'s three', async () => {
  const { log } = capture();
  const fds = openFdCount();
  let peak = fds;
  const sampler = setInterval(() => (peak = Math.max(peak, openFdCount())), 0);
  try {
    await startWarmUp({ requests: 3000, log }).done;
  } finally {
    clearInterval(sampler);
  }
  console.log(`warm-up peak: ${peak - fds} descriptors above the baseline`);
  // A request in progress may hold a step or two of a walk beyond the budget (one at a time here).
  assert.ok(peak - fds <= 32 + 4 + 2, `${peak - fds} descriptors above the baseline at the peak`);
  assert.ok(peak - fds >= 4, 'the sampler saw the warm-up at work');
});

test('a warm-up stopped early ends at once and removes its scratch directory', async () => {
  const { log, lines } = capture();
  const w = startWarmUp({ requests: 10_000_000, log });
  await new Promise((r) => setTimeout(r, 300));
  const t = performance.now();
  await w.stop();
  assert.ok(performance.now() - t < 2000, 'stopped within 2 s');
  const done = lines.find((l) => l.msg === 'warmed up');
  assert.ok(done && (done.requests as number) < 10_000_000, 'it stopped before its count');
  assert.deepEqual(scratches(), before0);
});

test('virtfs serve warms up on its own and not with --no-warm-up; a SIGTERM meanwhile leaves no scratch behind', async () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-warm-cli-'));
  writeFileSync(join(dir, 'kept'), 'the export is never touched');
  try {
    const serve = async (extra: string[], until: RegExp | null, killAfterMs: number) => {
      const p = spawn(process.execPath, [main, 'serve', '--debug', '-l', 'tcp:127.0.0.1:0', ...extra, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      let out = '';
      p.stderr.on('data', (c: Buffer) => (err += c.toString()));
      p.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<number | null>((r) => p.on('exit', r));
      // Signals are handled from the line that says where it serves.
      for (const t = Date.now(); !out.includes('virtfs: serving') && Date.now() - t < 20_000; ) await new Promise((r) => setTimeout(r, 20));
      const started = Date.now();
      while (Date.now() - started < killAfterMs && !(until ? until.test(err) : false)) await new Promise((r) => setTimeout(r, 20));
      p.kill('SIGTERM');
      assert.equal(await exited, 0, 'exits cleanly on SIGTERM');
      return err;
    };
    assert.match(await serve([], /"msg":"warmed up"/, 20_000), /"msg":"warmed up"/);
    assert.doesNotMatch(await serve(['--no-warm-up'], null, 2_000), /warm/);
    await serve([], null, 100);
    assert.deepEqual(scratches(), before0, 'no scratch directory left by a server stopped while warming up');
    assert.deepEqual(readdirSync(dir), ['kept'], 'nothing made in the export');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
