import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '../../src/client/client.js';
import { LinuxOpenFlag as O } from '../../src/protocol/constants.js';
import { hostXattr, u32 } from './host-xattr.js';
import { startFixture, type Fixture } from './server-fixture.js';

// The creation race of the hardening issue: the foundation made an object as root and then
// chowned it *by name* to the guest's user, so a host process that swapped its own root-owned
// file in under that name in between got that file chowned to the guest's user. Passthrough
// now creates each object as the guest's user (born owned): there is no later step a swap can
// redirect. A host racer renames root-owned files over the name the guest keeps creating.

const RACER = `
import os, sys, time
d = sys.argv[1]
print('ready', flush=True)
i = 0
while not os.path.exists(os.path.join(d, '..', 'stop')):
    p = os.path.join(d, 'v%d' % i)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b'victim')
    os.close(fd)
    os.rename(p, os.path.join(d, 'x'))
    i += 1
    time.sleep(0.0002)  # leave the guest room to create too
print(i)
`;

let fx: Fixture;
let c: Client;

before(async () => {
  fx = await startFixture();
  mkdirSync(join(fx.root, 'race'), { mode: 0o755 });
  chownSync(join(fx.root, 'race'), 1000, 1000);
  c = await Client.connect(fx.address);
});

after(async () => {
  c.close();
  await fx.close();
});

/**
 * Run `racer` (python) against directory `race` of export `root`, while the guest, attached as
 * uid 1000, keeps making `x` there with `make` and moving whatever is at `x` aside (`g<k>`) to be
 * judged afterwards, until it has made enough against a racer that wins the name now and then.
 * Resolves how many the guest made and how many swaps the racer made.
 */
async function race(client: Client, root: string, racer: string, make: (dir: number, k: number) => Promise<unknown>): Promise<{ made: number; swaps: number }> {
  const proc = spawn('python3', ['-c', racer, join(root, 'race')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  // The guest starts once the racer runs (a cold python can take longer than the whole loop).
  const ready = new Promise<void>((resolve) =>
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.startsWith('ready\n')) resolve();
    }),
  );
  const exited = new Promise((r) => proc.on('exit', r));
  await ready;
  const attached = await client.attach({ nUname: 1000 });
  const dir = (await client.walk(attached, ['race'])).fid;
  let made = 0;
  try {
    for (let k = 0; k < 6000 && (made < 200 || k < 600); k++) {
      try {
        await make(dir, k);
        made++;
      } catch {
        // EEXIST: the racer's object is there now
      }
      await client.renameat(dir, 'x', dir, `g${k}`).catch(() => {});
    }
  } finally {
    writeFileSync(join(root, 'stop'), '');
    await exited;
  }
  return { made, swaps: Number(out.slice('ready\n'.length)) };
}

test('a host process swapping a root-owned file in under the name being created never gets it given to the guest user', { timeout: 120_000 }, async () => {
  const { made, swaps } = await race(c, fx.root, RACER, async (dir, k) => {
    if (k % 3 === 0) return c.mknod(dir, 'x', 0o010644, 0, 0, 1000);
    if (k % 3 === 1) return c.symlink(dir, 'x', 'target', 1000);
    const f = (await c.walk(dir, [])).fid;
    return c.create(f, 'x', O.RDWR | O.CREAT | O.EXCL, 0o644, 1000).finally(() => c.clunk(f));
  });
  assert.ok(made > 100, `the guest made only ${made} objects`);
  assert.ok(swaps > 100, `the racer swapped only ${swaps} files in`);
  const dir = join(fx.root, 'race');
  let victims = 0;
  for (const n of readdirSync(dir)) {
    const st = lstatSync(join(dir, n));
    if (!st.isFile() || readFileSync(join(dir, n), 'utf8') !== 'victim') {
      assert.equal(st.uid, 1000, `${n}: the guest's own object is not born its user's`);
      continue;
    }
    victims++;
    assert.equal(st.uid, 0, `${n}: a root-owned file swapped in was given to the guest's user`);
  }
  assert.ok(victims > 10, `only ${victims} swapped-in files were caught under the name`);
});

// mapped-xattr's mkdir wrote the new directory's metadata after reopening it *by name*: a host
// process swapping its own directory in meanwhile got the guest's owner and mode on it.
const DIR_RACER = `
import os, sys, time
d = sys.argv[1]
print('ready', flush=True)
i = 0
while not os.path.exists(os.path.join(d, '..', 'stop')):
    p = os.path.join(d, 'v%d' % i)
    os.mkdir(p, 0o700)
    open(os.path.join(p, 'racer'), 'w').close()
    try:
        os.rename(p, os.path.join(d, 'x'))
    except OSError:
        pass
    i += 1
    time.sleep(0.002)  # a directory replaces an empty one: without a pause the racer holds the name almost always
print(i)
`;

test('mapped-xattr: a host process swapping its own directory in under a name the guest is making never gets the guest’s metadata', { timeout: 120_000 }, async () => {
  const mx = await startFixture({ security: { model: 'mapped-xattr' } });
  const mc = await Client.connect(mx.address);
  try {
    mkdirSync(join(mx.root, 'race'));
    const { made } = await race(mc, mx.root, DIR_RACER, (dir) => mc.mkdir(dir, 'x', 0o755, 1000));
    assert.ok(made > 100, `the guest made only ${made} directories`);
    const dir = join(mx.root, 'race');
    let racers = 0;
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      assert.doesNotMatch(n, /^\.virtfs-new-/, 'a directory was left under its temporary name');
      if (!existsSync(join(p, 'racer'))) {
        assert.deepEqual(hostXattr(p, 'user.virtfs.uid'), u32(1000), `${n}: the guest's directory lacks its metadata`);
        continue;
      }
      racers++;
      assert.equal(hostXattr(p, 'user.virtfs.uid'), null, `${n}: the racer's directory got the guest's metadata`);
    }
    assert.ok(racers > 10, `only ${racers} swapped-in directories were caught under the name`);
  } finally {
    mc.close();
    await mx.close();
  }
});
