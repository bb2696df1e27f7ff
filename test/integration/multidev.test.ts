import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Errno } from '../../src/protocol/errno.js';
import type { ServeOptions } from '../../src/index.js';
import { startFixture, type Fixture } from './server-fixture.js';

// An export that spans several host filesystems: two fresh tmpfs instances number their inodes
// the same way, so the same inode numbers turn up on both, and qid.path must still tell every
// object apart.
describe('an export spanning several filesystems', { skip: process.getuid?.() !== 0 ? 'mounting needs root (CI runs as root)' : false }, () => {
  let fx: Fixture;
  const mounts: string[] = [];

  before(async () => {
    fx = await startFixture();
    for (const m of ['t1', 't2']) {
      const at = join(fx.root, m);
      mkdirSync(at);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'virtfs-test', at]);
      mounts.push(at);
      for (const n of ['x', 'y', 'z']) writeFileSync(join(at, n), `${m}/${n}`);
    }
  });

  after(async () => {
    // The server holds descriptors inside the mounts: stop it before unmounting.
    await fx.running.close();
    for (const m of mounts) execFileSync('umount', [m]);
    await fx.close();
  });

  test('the two filesystems really share inode numbers (the premise)', () => {
    for (const n of ['x', 'y', 'z']) assert.equal(statSync(join(fx.root, 't1', n)).ino, statSync(join(fx.root, 't2', n)).ino);
  });

  test('every object has its own qid.path, the same by walk and by readdir, and stable', async () => {
    const c = await Client.connect(fx.address);
    const root = await c.attach({ nUname: 0 });
    const byWalk = new Map<string, bigint>();
    for (const m of ['t1', 't2']) {
      for (const n of ['', 'x', 'y', 'z']) {
        const { fid, qids } = await c.walkPath(root, `${m}/${n}`);
        byWalk.set(`${m}/${n}`, qids[qids.length - 1]!.path);
        await c.clunk(fid);
      }
      const { fid } = await c.walkPath(root, m);
      await c.open(fid);
      for (const e of await c.readdir(fid)) {
        const name = e.name.toString();
        if (name === '.' || name === '..') continue;
        assert.equal(e.qid.path, byWalk.get(`${m}/${name}`), `readdir qid of ${m}/${name}`);
      }
      await c.clunk(fid);
    }
    const paths = [...byWalk.values()];
    assert.equal(new Set(paths).size, paths.length, `qid paths collide: ${[...byWalk].join(' ')}`);
    for (const [p, q] of byWalk) {
      const { fid, qids } = await c.walkPath(root, p);
      assert.equal(qids[qids.length - 1]!.path, q, `qid of ${p} changed`);
      await c.clunk(fid);
    }
    c.close();
  });

  test('".." from the root of a mounted filesystem is the directory it is mounted on', async () => {
    const c = await Client.connect(fx.address);
    const root = await c.attach({ nUname: 0 });
    const rootPath = (await c.getattr(root)).qid.path;
    const { fid, qids } = await c.walkPath(root, 't1/../t2/../t1/x');
    assert.deepEqual(
      qids.map((q) => q.path),
      [qids[0]!.path, rootPath, qids[2]!.path, rootPath, qids[0]!.path, qids[5]!.path],
    );
    assert.notEqual(qids[0]!.path, qids[2]!.path);
    await c.clunk(fid);
    c.close();
  });
});

/** A fixture whose export holds one tmpfs mount at `t1` (with a file x), served with `opts`. */
async function withMount(opts: Partial<ServeOptions>, fn: (fx: Fixture) => Promise<void>): Promise<void> {
  const fx = await startFixture(opts);
  const at = join(fx.root, 't1');
  mkdirSync(at);
  writeFileSync(join(fx.root, 'own'), 'own');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'virtfs-test', at]);
  writeFileSync(join(at, 'x'), 'x');
  try {
    await fn(fx);
  } finally {
    await fx.running.close();
    execFileSync('umount', [at]);
    await fx.close();
  }
}

describe('--multidevs forbid and warn', { skip: process.getuid?.() !== 0 ? 'mounting needs root (CI runs as root)' : false }, () => {
  test('forbid: a walk into another filesystem stops there with ENODEV; the export’s own objects are served', () =>
    withMount({ multidevs: 'forbid' }, async (fx) => {
      const c = await Client.connect(fx.address);
      const root = await c.attach({ nUname: 0 });
      await assert.rejects(c.walkPath(root, 't1'), { errno: Errno.ENODEV });
      await assert.rejects(c.walkPath(root, 't1/x'), { errno: Errno.ENODEV });
      const { fid } = await c.walkPath(root, 'own');
      assert.equal((await c.getattr(fid)).size, 3n);
      c.close();
    }));

  test('warn: objects of another filesystem keep their raw inode numbers (the unit test checks the one warning)', () =>
    withMount({ multidevs: 'warn' }, async (fx) => {
      const c = await Client.connect(fx.address);
      const root = await c.attach({ nUname: 0 });
      const { qids } = await c.walkPath(root, 't1/x');
      assert.equal(qids[1]!.path, statSync(join(fx.root, 't1', 'x'), { bigint: true }).ino);
      c.close();
    }));
});
