import assert from 'node:assert/strict';
import { chownSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';

// Identity policy through the kernel client: guest root squashed, ids mapped like a user
// namespace's, and an allow list that refuses a mount as root but takes one as the listed user.

interface Run {
  dir: string;
  result: GuestResult;
}

/**
 * A fresh export with a private and a public file of host root's, served with `args`, and
 * `script` run as guest root. The export itself belongs to `owner`: the host's permission checks
 * apply to squashed and mapped users, as they would to any process of theirs.
 */
async function run(args: string[], owner: number, script: (port: number) => string, plainNetwork = false): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-identity-'));
  chownSync(dir, owner, owner);
  writeFileSync(join(dir, 'secret'), 'secret\n', { mode: 0o600 });
  writeFileSync(join(dir, 'public'), 'public\n', { mode: 0o644 });
  const server = await startVirtfs(dir, args);
  try {
    const result = await runGuest({
      port: server.port,
      script: script(server.port),
      timeoutMs: 4 * 60_000,
      // The allow-list guest mounts by itself, twice: plain user networking, where 10.0.2.2 is the host.
      ...(plainNetwork ? { mountCommand: 'true' } : {}),
    });
    return { dir, result };
  } finally {
    await server.stop();
  }
}

const value = (r: Run, name: string) => r.result.values.get(name);

function assertFinished(r: Run): void {
  const tail = r.result.console.split('\n').slice(-30).join('\n');
  assert.equal(r.result.finished, true, `guest did not finish:\n${tail}`);
}

describe('identity policy through the kernel client', { timeout: 15 * 60_000 }, () => {
  let squash: Run;
  let maps: Run;
  let allow: Run;

  before(async () => {
    // Privileges allowed, so that it is the squash that refuses the device below.
    squash = await run(['--squash', 'root', '--allow-privileged', 'all'], 65534, () => `
echo "VALUE read-secret $(cat secret 2>&1 | tr '\\n' ' ')"
echo "VALUE read-public $(cat public)"
echo made > made && echo "VALUE create ok"
echo "VALUE chown-root $(chown 0:0 made 2>&1 && echo allowed)"
echo "VALUE chmod-theirs $(chmod 0777 public 2>&1 && echo allowed)"
echo "VALUE mknod $(mknod mem c 1 1 2>&1 && echo allowed)"
`);
    maps = await run(['--uid-map', '0:100000:65536', '--gid-map', '0:100000:65536'], 100000, () => `
echo made > made
chown 1000:1001 made
echo "VALUE made-owner $(stat -c %u:%g made)"
echo "VALUE host-root-file $(stat -c %u:%g public)"
echo "VALUE chown-outside $(chown 70000 made 2>&1 && echo allowed)"
`);
    // The client's mount-time attach names its user by uname (default "nobody"); each guest
    // user's first access then attaches by uid.
    allow = await run(['--allow-users', '1000'], 0, (port) => `
mkdir -p /m1 /m2
echo "VALUE mount-as-nobody $(mount -t 9p -o trans=tcp,port=${port},version=9p2000.L 10.0.2.2 /m1 2>&1 && echo mounted)"
echo "VALUE mount-as-1000 $(mount -t 9p -o trans=tcp,port=${port},version=9p2000.L,uname=1000 10.0.2.2 /m2 2>&1 && echo mounted)"
echo "VALUE root-lists $(ls /m2 2>&1 | tr '\\n' ' ')"
umount /m2 2>/dev/null
`, true);
  });

  after(() => {
    for (const r of [squash, maps, allow]) if (r) rmSync(r.dir, { recursive: true, force: true });
  });

  test('--squash root: guest root creates as nobody on the host', () => {
    assertFinished(squash);
    assert.equal(value(squash, 'create'), 'ok');
    const st = lstatSync(join(squash.dir, 'made'));
    assert.deepEqual([st.uid, st.gid], [65534, 65534]);
  });

  test('--squash root: guest root reads only what nobody may, and cannot chown, chmod others’ files or make devices', () => {
    assert.match(value(squash, 'read-secret') ?? '', /Permission denied/);
    assert.equal(value(squash, 'read-public'), 'public');
    for (const v of ['chown-root', 'chmod-theirs', 'mknod']) assert.doesNotMatch(value(squash, v) ?? 'missing', /allowed$/, v);
    assert.equal(lstatSync(join(squash.dir, 'made')).uid, 65534);
    assert.equal(lstatSync(join(squash.dir, 'public')).mode & 0o7777, 0o644);
  });

  test('--uid-map/--gid-map: guest ids land shifted on the host and read back unshifted', () => {
    assertFinished(maps);
    assert.equal(value(maps, 'made-owner'), '1000:1001');
    const st = lstatSync(join(maps.dir, 'made'));
    assert.deepEqual([st.uid, st.gid], [101000, 101001]);
  });

  test('--uid-map: a host owner outside the map shows as nobody; a guest id outside it cannot be given', () => {
    assert.equal(value(maps, 'host-root-file'), '65534:65534');
    assert.doesNotMatch(value(maps, 'chown-outside') ?? 'missing', /allowed$/);
  });

  test('--allow-users: an attach as the listed user is taken, any other refused', () => {
    assertFinished(allow);
    assert.doesNotMatch(value(allow, 'mount-as-nobody') ?? 'missing', /mounted$/);
    assert.match(value(allow, 'mount-as-1000') ?? '', /mounted$/);
    // guest root's own attach is refused, so it cannot list what the mount shows user 1000
    assert.match(value(allow, 'root-lists') ?? '', /Operation not permitted/);
  });
});
