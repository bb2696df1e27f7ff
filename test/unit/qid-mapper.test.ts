import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { QidMapper, qidType, qidVersion } from '../../src/backend/local/qid-mapper.js';
import { QidType } from '../../src/protocol/constants.js';

test('inode numbers on the export\'s own filesystem are kept as they are', () => {
  const m = new QidMapper(10n);
  assert.equal(m.path(10n, 12345n), 12345n);
});

test('the same (dev, ino) always maps to the same path', () => {
  const m = new QidMapper(1n);
  const a = m.path(7n, 99n);
  m.path(8n, 99n);
  assert.equal(m.path(7n, 99n), a);
});

test('equal inode numbers on different filesystems never collide', () => {
  const m = new QidMapper(1n);
  const paths = [m.path(1n, 42n), m.path(2n, 42n), m.path(3n, 42n)];
  assert.equal(new Set(paths).size, 3);
});

test('inode numbers too large for a device prefix still get unique, stable paths', () => {
  const m = new QidMapper(1n);
  const huge = 2n ** 60n + 5n;
  const a = m.path(2n, huge);
  const b = m.path(2n, huge + 1n);
  const top = m.path(1n, 2n ** 63n + 1n);
  assert.notEqual(a, b);
  assert.notEqual(a, top);
  assert.equal(m.path(2n, huge), a);
});

test('property: distinct (dev, ino) pairs never share a qid.path', () => {
  const dev = fc.bigInt({ min: 1n, max: 6n });
  const ino = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
  fc.assert(
    fc.property(fc.array(fc.tuple(dev, ino), { maxLength: 200 }), (pairs) => {
      const m = new QidMapper(1n);
      const seen = new Map<bigint, string>();
      for (const [d, i] of pairs) {
        const p = m.path(d, i);
        const key = `${d}:${i}`;
        const prev = seen.get(p);
        if (prev !== undefined && prev !== key) return false;
        seen.set(p, key);
        if (p < 0n || p >= 2n ** 64n) return false;
      }
      return true;
    }),
  );
});

test('qid.type follows the file type', () => {
  assert.equal(qidType(0o040755), QidType.DIR);
  assert.equal(qidType(0o120777), QidType.SYMLINK);
  assert.equal(qidType(0o100644), QidType.FILE);
  assert.equal(qidType(0o010644), QidType.FILE);
});

test('qid.version changes with mtime nanoseconds and with size, and is never 0', () => {
  const v = qidVersion(1000n, 1n, 10n);
  assert.notEqual(qidVersion(1000n, 2n, 10n), v);
  assert.notEqual(qidVersion(1000n, 1n, 11n), v);
  assert.notEqual(qidVersion(1001n, 1n, 10n), v);
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 40n }), fc.bigInt({ min: 0n, max: 999_999_999n }), fc.bigInt({ min: 0n, max: 2n ** 50n }), (s, ns, size) => qidVersion(s, ns, size) !== 0));
});

test('multidevs forbid bars objects of other filesystems; remap and warn allow them', () => {
  assert.equal(new QidMapper(1n, 'forbid').allows(1n), true);
  assert.equal(new QidMapper(1n, 'forbid').allows(2n), false);
  assert.equal(new QidMapper(1n, 'remap').allows(2n), true);
  assert.equal(new QidMapper(1n, 'warn').allows(2n), true);
});

test('multidevs warn keeps raw inode numbers and tells each other filesystem once', () => {
  const told: bigint[] = [];
  const m = new QidMapper(1n, 'warn', (dev) => told.push(dev));
  assert.equal(m.path(2n, 42n), 42n);
  assert.equal(m.path(2n, 43n), 43n);
  assert.equal(m.path(3n, 42n), 42n);
  assert.equal(m.path(1n, 42n), 42n);
  assert.deepEqual(told, [2n, 3n]);
});

test('property: the direct rule, where there is one, agrees with path() for every inode it covers', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('remap', 'warn', 'forbid') as fc.Arbitrary<'remap' | 'warn' | 'forbid'>,
      fc.array(fc.tuple(fc.bigInt({ min: 1n, max: 6n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), { maxLength: 40 }),
      (policy, pairs) => {
        const m = new QidMapper(1n, policy);
        for (const [dev, ino] of pairs) {
          const rule = m.direct(dev);
          assert.ok(rule, 'a handful of filesystems always have a rule');
          if (ino <= rule.maxIno) assert.equal(rule.prefix | ino, m.path(dev, ino), `dev ${dev} ino ${ino}`);
        }
      },
    ),
  );
});

test('the direct rule covers the export\'s inode numbers below 2^63, and other filesystems\' below 2^48', () => {
  const m = new QidMapper(1n);
  assert.deepEqual(m.direct(1n), { prefix: 0n, maxIno: 2n ** 63n - 1n });
  const other = m.direct(9n)!;
  assert.equal(other.maxIno, 2n ** 48n - 1n);
  assert.equal(other.prefix, m.path(9n, 0n));
});

test('past 32,767 other filesystems there is no direct rule: each path is remembered one by one', () => {
  const m = new QidMapper(0n);
  for (let dev = 1n; dev <= 32767n; dev++) assert.ok(m.direct(dev));
  assert.equal(m.direct(40000n), null);
  assert.notEqual(m.path(40000n, 5n), m.path(40001n, 5n));
});
