import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { newcArchive, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from '../../src/guest/newc-archive.js';

interface Member {
  name: string;
  mode: number;
  nlink: number;
  rdev: [number, number];
  data: Buffer;
}

/** Read a newc archive back by its specification (the format the kernel's initramfs unpacker reads). */
function members(archive: Buffer): Member[] {
  const b = gunzipSync(archive);
  const out: Member[] = [];
  let at = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    assert.equal(b.toString('latin1', at, at + 6), '070701', `magic at ${at}`);
    const field = (i: number) => parseInt(b.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const [mode, nlink, size, rmaj, rmin, namesize] = [field(1), field(4), field(6), field(9), field(10), field(11)];
    const name = b.toString('latin1', at + 110, at + 110 + namesize - 1);
    assert.equal(b[at + 110 + namesize - 1], 0, 'names end in NUL');
    const dataAt = align(at + 110 + namesize);
    if (name === 'TRAILER!!!') return out;
    out.push({ name, mode, nlink, rdev: [rmaj, rmin], data: b.subarray(dataAt, dataAt + size) });
    at = align(dataAt + size);
  }
}

test('newc archives hold directories, files, symlinks and device nodes the kernel can unpack', () => {
  const got = members(
    newcArchive([
      { path: 'bin', mode: S_IFDIR | 0o755 },
      { path: '/bin/tool', mode: S_IFREG | 0o755, data: Buffer.from('12345') },
      { path: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('tool') },
      { path: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
      { path: 'dev/vda', mode: S_IFBLK | 0o600, rdevMajor: 254, rdevMinor: 0 },
    ]),
  );
  assert.deepEqual(got.map((m) => m.name), ['bin', 'bin/tool', 'bin/sh', 'dev/console', 'dev/vda']);
  assert.equal(got[0]!.nlink, 2);
  assert.equal(got[1]!.data.toString(), '12345');
  assert.equal(got[1]!.mode, S_IFREG | 0o755);
  assert.equal(got[2]!.data.toString(), 'tool');
  assert.deepEqual(got[3]!.rdev, [5, 1]);
  assert.deepEqual(got[4]!.rdev, [254, 0]);
  assert.equal(got[4]!.nlink, 1, 'a block device is not a directory, though its type bits contain S_IFDIR\'s');
});
