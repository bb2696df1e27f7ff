import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';

const DIRS = 30;
const FILES_PER_DIR = 100;
const BUDGET = 256;

// The guest's client keeps a fid for every dentry it caches: walking the whole tree makes it hold
// far more objects than the server's budget of descriptors.
const script = `
value() { echo "VALUE $1 $2"; }
value count "$(find tree -type f | wc -l)"
value content "$(find tree -type f | sort | xargs cat | md5sum | cut -d' ' -f1)"
value listed "$(ls -lR tree | grep -c '^-')"
value tarred "$(tar cf - tree | tar tf - | grep -c '/f')"
value again "$(find tree -type f | sort | xargs cat | md5sum | cut -d' ' -f1)"
`;

describe(`a guest reads a tree of ${DIRS * FILES_PER_DIR} files from a server with a budget of ${BUDGET} descriptors`, { timeout: 15 * 60_000 }, () => {
  let dir: string;
  let result: GuestResult;
  let peak = 0;
  let expected = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'virtfs-budget-'));
    const hash = createHash('md5');
    for (let d = 0; d < DIRS; d++) {
      const sub = join(dir, 'tree', `d${String(d).padStart(2, '0')}`);
      mkdirSync(sub, { recursive: true });
      for (let f = 0; f < FILES_PER_DIR; f++) {
        const content = `file ${d}/${f}\n`;
        writeFileSync(join(sub, `f${String(f).padStart(3, '0')}`), content);
        hash.update(content);
      }
    }
    expected = hash.digest('hex');
    const server = await startVirtfs(dir, ['--max-descriptors', String(BUDGET)]);
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, readdirSync(`/proc/${server.pid}/fd`).length);
      } catch {
        // exited
      }
    }, 50);
    try {
      result = await runGuest({ port: server.port, script, mountOptions: ',cache=loose', timeoutMs: 12 * 60_000 });
    } finally {
      clearInterval(sampler);
      await server.stop();
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('find, ls -lR and tar see every file, and every byte reads back right, twice', () => {
    const tail = result.console.split('\n').slice(-30).join('\n');
    assert.equal(result.mounted && result.finished, true, tail);
    const total = String(DIRS * FILES_PER_DIR);
    assert.equal(result.values.get('count'), total);
    assert.equal(result.values.get('listed'), total);
    assert.equal(result.values.get('tarred'), total);
    assert.equal(result.values.get('content'), expected);
    assert.equal(result.values.get('again'), expected);
  });

  test('the server never held many more descriptors than its budget', () => {
    assert.ok(peak > 0, 'the server was sampled');
    assert.ok(peak <= BUDGET + 64, `the server held up to ${peak} descriptors with a budget of ${BUDGET}`);
  });
});
