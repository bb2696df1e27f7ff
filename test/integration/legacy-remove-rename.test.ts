import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { SecurityModelName } from '../../src/backend/local/security-model.js';
import { Errno, P9Error } from '../../src/protocol/errno.js';
import { rejectsWith } from './assertions.js';
import { startFixture, type Fixture } from './server-fixture.js';
import { b, WireClient } from './wire-client.js';

const racerScript = fileURLToPath(new URL('./exchange-racer.js', import.meta.url));

/** The host process swapping names, one pair at a time. */
class Racer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterableIterator<string>;
  private readonly rl: Interface;

  constructor() {
    this.proc = spawn(process.execPath, [racerScript]);
    this.rl = createInterface({ input: this.proc.stdout });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  private async say(line: string, answer: string): Promise<void> {
    this.proc.stdin.write(`${line}\n`);
    const r = await this.lines.next();
    assert.equal(r.value, answer);
  }

  swap(dir: string, a: string, bName: string): Promise<void> {
    return this.say(`swap ${dir} ${a} ${bName}`, 'swapping');
  }

  stop(): Promise<void> {
    return this.say('stop', 'stopped');
  }

  close(): void {
    this.rl.close();
    this.proc.kill();
  }
}

const TRIALS = 40;

/** Inode numbers of what the names hold now (absent names left out). */
function inodesAt(dir: string, names: string[]): bigint[] {
  return names.flatMap((n) => {
    try {
      return [lstatSync(join(dir, n), { bigint: true }).ino];
    } catch {
      return [];
    }
  });
}

for (const model of ['passthrough', 'mapped-file'] as SecurityModelName[]) {
  describe(`legacy Tremove and Trename under a host process swapping names (${model})`, () => {
    let fx: Fixture;
    let racer: Racer;
    let c: WireClient;
    before(async () => {
      fx = await startFixture({ security: { model } });
      racer = new Racer();
      c = await WireClient.attach(fx.port);
    });
    after(async () => {
      c.close();
      racer.close();
      await fx.close();
    });

    /**
     * Each trial: a fid on object A, then the host swaps the names `a` and `b` without pause
     * while the legacy request runs; `check` gets the inodes of A and B and what the request did.
     */
    async function trials(request: (i: number) => Promise<unknown>, check: (i: number, a: bigint, bIno: bigint, ok: boolean) => void): Promise<number> {
      let done = 0;
      for (let i = 0; i < TRIALS; i++) {
        writeFileSync(join(fx.root, `a${i}`), 'A');
        writeFileSync(join(fx.root, `b${i}`), 'B');
        const aIno = lstatSync(join(fx.root, `a${i}`), { bigint: true }).ino;
        const bIno = lstatSync(join(fx.root, `b${i}`), { bigint: true }).ino;
        await c.walk(0, 1, `a${i}`);
        await racer.swap(fx.root, `a${i}`, `b${i}`);
        let ok = true;
        try {
          await request(i);
        } catch (err) {
          // Never the wrong object: at worst the object could not be pinned down in time.
          assert.ok(err instanceof P9Error && err.errno === Errno.ENOENT, `trial ${i}: ${err}`);
          ok = false;
          await c.rpc('Tclunk', { fid: 1 }).catch(() => {});
        }
        await racer.stop();
        check(i, aIno, bIno, ok);
        if (ok) done++;
      }
      assert.deepEqual(readdirSync(fx.root).filter((n) => n.startsWith('.virtfs-aside-')), [], 'no entry is left aside');
      return done;
    }

    test(`Tremove removes the object its fid names, never the other one (${TRIALS} trials)`, async () => {
      const removed = await trials(
        () => c.rpc('Tremove', { fid: 1 }),
        (i, aIno, bIno, ok) => {
          const left = inodesAt(fx.root, [`a${i}`, `b${i}`]);
          assert.ok(left.includes(bIno), `trial ${i}: the other object was removed`);
          assert.equal(left.includes(aIno), !ok, `trial ${i}: the object is ${ok ? 'still there' : 'gone'}`);
        },
      );
      console.log(`${model}: ${removed} of ${TRIALS} legacy removes under the racer succeeded, the rest ENOENT`);
      assert.ok(removed > TRIALS / 4, `${removed} of ${TRIALS} removes succeeded`);
    });

    test('a Tremove that fails leaves the object under its own name, with its metadata', async () => {
      await c.rpc('Tmkdir', { dfid: 0, name: b('full'), mode: 0o751, gid: 0 });
      writeFileSync(join(fx.root, 'full', 'child'), '');
      const before = await c.walk(0, 1, 'full');
      await rejectsWith(c.rpc('Tremove', { fid: 1 }), Errno.ENOTEMPTY);
      const again = await c.walk(0, 1, 'full');
      assert.deepEqual(again.qids, before.qids);
      assert.equal((await c.rpc('Tgetattr', { fid: 1, requestMask: 0x7ffn })).mode, 0o40751);
      await c.rpc('Tclunk', { fid: 1 });
      const asides = (d: string) => readdirSync(d).filter((n) => n.startsWith('.virtfs-aside-'));
      assert.deepEqual(asides(fx.root), []);
      if (model === 'mapped-file') assert.deepEqual(asides(join(fx.root, '.virtfs_metadata')), []);
    });

    test(`Trename moves the object its fid names, never the other one (${TRIALS} trials)`, async () => {
      const renamed = await trials(
        async (i) => {
          await c.rpc('Trename', { fid: 1, dfid: 0, name: b(`c${i}`) });
          await c.rpc('Tclunk', { fid: 1 });
        },
        (i, aIno, bIno, ok) => {
          const left = inodesAt(fx.root, [`a${i}`, `b${i}`]);
          assert.ok(left.includes(bIno), `trial ${i}: the other object was moved`);
          if (ok) assert.deepEqual(inodesAt(fx.root, [`c${i}`]), [aIno], `trial ${i}: c${i} holds the object`);
          else assert.ok(left.includes(aIno), `trial ${i}: the object stays where it was`);
        },
      );
      console.log(`${model}: ${renamed} of ${TRIALS} legacy renames under the racer succeeded, the rest ENOENT`);
      assert.ok(renamed > TRIALS / 4, `${renamed} of ${TRIALS} renames succeeded`);
    });
  });
}

describe('Tremove on a read-only export', () => {
  let fx: Fixture;
  let c: WireClient;
  before(async () => {
    fx = await startFixture({ readonly: true });
    c = await WireClient.attach(fx.port);
  });
  after(async () => {
    c.close();
    await fx.close();
  });

  test('is refused with EROFS and still clunks its fid', async () => {
    writeFileSync(join(fx.root, 'kept'), 'x');
    await c.walk(0, 1, 'kept');
    await rejectsWith(c.rpc('Tremove', { fid: 1 }), Errno.EROFS);
    // The fid is gone: unknown to a clunk, and free to be made again.
    await rejectsWith(c.rpc('Tclunk', { fid: 1 }), Errno.EBADF);
    await c.walk(0, 1, 'kept');
    assert.deepEqual(readdirSync(fx.root), ['kept']);
  });
});
