import assert from 'node:assert/strict';
import { chownSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pjdfstestAssets } from './pjdfstest-assets.js';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';
import { hostXattr, u32, u64 } from '../integration/host-xattr.js';

// One of everything a root filesystem holds, made by guest root through each security model:
// the guest must see the same thing whatever the model, and the host what the model promises.
const script = readFileSync(new URL('../../../test/kernel/models.sh', import.meta.url), 'utf8');
const checks = [...script.matchAll(/^\s*(?:check|expect_eq)\s+(\S+)/gm)].map((m) => m[1]!);
const NOBODY = 65534;

interface Run {
  dir: string;
  result: GuestResult;
  serverLog: string;
}

/** Boot a guest on `args` over a fresh export (owned by nobody when the server runs as nobody). */
async function runModel(args: string[], asNobody: boolean, guestScript = script): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-models-'));
  if (asNobody) chownSync(dir, NOBODY, NOBODY);
  const server = await startVirtfs(dir, asNobody ? [...args, '--user', 'nobody'] : args);
  try {
    // pjdfstest's helper runs a call as any uid: the ACL checks use it.
    const archives = [pjdfstestAssets().archive];
    const result = await runGuest({ port: server.port, script: guestScript, archives, mountOptions: ',posixacl', timeoutMs: 8 * 60_000 });
    return { dir, result, serverLog: '' };
  } finally {
    await server.stop();
  }
}



/** The local-root attack of the hardening issue, from a guest whose server allows nothing privileged. */
const DEFAULT_PRIVILEGE_SCRIPT = `
printf '#!/bin/sh\\n' > prog && chmod 755 prog && chown 1001:1001 prog
echo "VALUE mknod-char $(mknod mem c 1 1 2>&1 && echo allowed)"
echo "VALUE mknod-block $(mknod disk b 254 0 2>&1 && echo allowed)"
echo "VALUE chmod-setuid $(chmod 4755 prog 2>&1 && echo allowed)"
echo "VALUE chmod-setgid $(chmod 2755 prog 2>&1 && echo allowed)"
echo "VALUE set-capability $(setfattr -n security.capability -v 0x0100000280000000000000000000000000000000 prog 2>&1 && echo allowed)"
echo "VALUE set-trusted $(setfattr -n trusted.overlay.opaque -v y prog 2>&1 && echo allowed)"
mkfifo fifo && mkdir shared && chmod 2775 shared && chmod 750 prog && echo "VALUE ordinary ok"
`;

function allUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...allUnder(p));
  }
  return out;
}

function assertGuestRan(r: Run, skip: readonly string[] = []): void {
  const tail = r.result.console.split('\n').slice(-30).join('\n');
  assert.equal(r.result.mounted, true, `mount failed:\n${tail}`);
  assert.equal(r.result.finished, true, `workload did not finish:\n${tail}`);
  for (const name of checks.filter((c) => !skip.includes(c))) {
    const c = r.result.checks.get(name);
    assert.ok(c, `check ${name} never reported`);
    assert.equal(c.ok, true, `${name}: ${c.detail}`);
  }
}

/**
 * What a mapped model leaves on the host: the server user's plain file (0600) or directory (0700),
 * nothing else. With `realAcls` (mapped-file) an object carrying a host ACL has the permission
 * bits its ACL sets (the guest's u::, mask and o:: entries), and still no special bits.
 */
function assertPlainServerObject(p: string, realAcls = false): void {
  const st = lstatSync(p);
  assert.equal(st.uid, NOBODY, p);
  assert.ok(st.isDirectory() || st.isFile(), `${p} is not a regular file or directory on the host`);
  const expected = st.isDirectory() ? 0o700 : 0o600;
  if (realAcls && hostXattr(p, 'system.posix_acl_access')) assert.equal(st.mode & 0o7000, 0, p);
  else assert.equal(st.mode & 0o7777, expected, p);
}

/**
 * The mapped models keep a guest's trusted.* attribute under user.virtfs., where the host kernel
 * never acts on it; mapped-xattr its ACLs too, mapped-file puts them on the host file as QEMU does.
 */
function assertXattrsKeptInert(r: Run, acls: 'mapped' | 'host'): void {
  const p = (n: string) => join(r.dir, 'm', n);
  assert.equal(!!hostXattr(p('file'), 'user.virtfs.system.posix_acl_access'), acls === 'mapped');
  assert.equal(!!hostXattr(p('file'), 'system.posix_acl_access'), acls === 'host');
  assert.equal(!!hostXattr(p('dir'), 'user.virtfs.system.posix_acl_default'), acls === 'mapped');
  assert.equal(!!hostXattr(p('dir'), 'system.posix_acl_default'), acls === 'host');
  assert.equal(hostXattr(p('dir'), 'trusted.overlay.opaque'), null);
  assert.equal(hostXattr(p('dir'), 'user.virtfs.trusted.overlay.opaque')?.toString(), 'y');
  assert.equal(hostXattr(p('file'), 'user.note')?.toString(), 'hello');
}

/** The guest's view of everything it made, keyed by value name. */
function guestView(r: Run): Map<string, string> {
  return new Map([...r.result.values].filter(([k]) => k !== 'set-server-meta'));
}

describe('security models through the kernel client', { timeout: 30 * 60_000 }, () => {
  let passthrough: Run;
  let mapped: Run;
  let mappedFile: Run;
  let none: Run;
  let privilegeDefault: Run;

  before(async () => {
    // The models as the guest would use them for a whole system: devices, setuid, security.* allowed.
    passthrough = await runModel(['--allow-privileged', 'all'], false);
    mapped = await runModel(['--security-model', 'mapped-xattr'], true);
    mappedFile = await runModel(['--security-model', 'mapped-file'], true);
    none = await runModel(['--security-model', 'none', '--allow-privileged', 'all'], true);
    privilegeDefault = await runModel([], false, DEFAULT_PRIVILEGE_SCRIPT);
  });

  after(() => {
    for (const r of [passthrough, mapped, mappedFile, none, privilegeDefault]) if (r) rmSync(r.dir, { recursive: true, force: true });
  });

  describe('passthrough (server as root)', () => {
    test('every guest check passes', () => assertGuestRan(passthrough));

    test('the host holds the real owners, modes, types and devices', () => {
      const m = (n: string) => lstatSync(join(passthrough.dir, 'm', n));
      assert.deepEqual([m('file').uid, m('file').gid, m('file').mode], [1001, 1002, 0o104775]);
      assert.deepEqual([m('dir').uid, m('dir').gid, m('dir').mode], [1003, 1004, 0o043775]);
      assert.equal(m('link').isSymbolicLink(), true);
      assert.deepEqual([m('link').uid, m('link').gid], [1005, 1006]);
      assert.equal(m('fifo').isFIFO(), true);
      assert.equal(m('cdev').isCharacterDevice(), true);
      assert.equal(m('cdev').rdev, 0x103);
      assert.equal(m('bdev').isBlockDevice(), true);
    });

    test('an ACL is enforced for the user it names and no other, and a default ACL is inherited', () => {
      assert.equal(passthrough.result.values.get('acl-open-1234'), '0');
      assert.equal(passthrough.result.values.get('acl-open-1235'), 'EACCES');
      assert.match(passthrough.result.values.get('acl-inherited') ?? '', /user:1234:rwx/);
    });

    test('ACLs and trusted.* attributes are the host’s own', () => {
      assert.ok(hostXattr(join(passthrough.dir, 'm', 'file'), 'system.posix_acl_access'));
      assert.equal(hostXattr(join(passthrough.dir, 'm', 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');
    });
  });

  describe('passthrough (server as root) by default: no host privilege for whoever connects', () => {
    test('guest root is refused device nodes, setuid and setgid files, file capabilities and trusted.*', () => {
      const v = (k: string) => privilegeDefault.result.values.get(k) ?? 'missing';
      for (const k of ['mknod-char', 'mknod-block', 'chmod-setuid', 'chmod-setgid']) assert.match(v(k), /Operation not permitted$/, k);
      for (const k of ['set-capability', 'set-trusted']) assert.doesNotMatch(v(k), /allowed$/, k);
      const p = (n: string) => join(privilegeDefault.dir, n);
      assert.equal(existsSync(p('mem')) || existsSync(p('disk')), false);
      assert.equal(lstatSync(p('prog')).mode & 0o6000, 0);
      assert.equal(hostXattr(p('prog'), 'security.capability'), null);
      assert.equal(hostXattr(p('prog'), 'trusted.overlay.opaque'), null);
    });

    test('and still makes fifos, setgid directories, owners and ordinary modes', () => {
      const v = (k: string) => privilegeDefault.result.values.get(k) ?? 'missing';
      assert.equal(v('ordinary'), 'ok');
      assert.equal(lstatSync(join(privilegeDefault.dir, 'fifo')).isFIFO(), true);
      assert.equal(lstatSync(join(privilegeDefault.dir, 'shared')).mode & 0o7777, 0o2775);
      assert.deepEqual([lstatSync(join(privilegeDefault.dir, 'prog')).uid, lstatSync(join(privilegeDefault.dir, 'prog')).mode & 0o7777], [1001, 0o750]);
    });
  });

  describe('mapped-xattr (server as nobody)', () => {
    test('every guest check passes', () => assertGuestRan(mapped));

    test('the guest sees exactly what it sees through passthrough', () => {
      assert.deepEqual(Object.fromEntries(guestView(mapped)), Object.fromEntries(guestView(passthrough)));
    });

    test('the host holds nothing privileged: every object is the server user’s plain file or directory, 0600/0700', () => {
      const objects = allUnder(mapped.dir);
      assert.ok(objects.length > 20, `only ${objects.length} objects`);
      for (const p of objects) {
        assertPlainServerObject(p);
      }
    });

    test('the guest’s view is stored as QEMU stores it (user.virtfs.*, little-endian)', () => {
      const p = (n: string) => join(mapped.dir, 'm', n);
      assert.deepEqual(hostXattr(p('file'), 'user.virtfs.uid'), u32(1001));
      assert.deepEqual(hostXattr(p('file'), 'user.virtfs.gid'), u32(1002));
      // 4755 as made, its group bits raised to the ACL mask (rwx) by setfacl
      assert.equal(mapped.result.values.get('acl-mode'), '4775');
      assert.deepEqual(hostXattr(p('file'), 'user.virtfs.mode'), u32(0o104775));
      assert.deepEqual(hostXattr(p('dir'), 'user.virtfs.mode'), u32(0o043775));
      assert.deepEqual(hostXattr(p('link'), 'user.virtfs.mode'), u32(0o120777));
      assert.equal(readFileSync(p('link'), 'utf8'), 'file');
      assert.deepEqual(hostXattr(p('fifo'), 'user.virtfs.mode'), u32(0o010644));
      assert.deepEqual(hostXattr(p('cdev'), 'user.virtfs.rdev'), u64(0x103n));
      assert.deepEqual(hostXattr(p('bdev'), 'user.virtfs.rdev'), u64(0x801n));
    });

    test('ACLs live under QEMU’s mapped names, trusted.* inert under user.virtfs., never on the host itself', () => {
      assertXattrsKeptInert(mapped, 'mapped');
    });

    test('the guest cannot set the server’s own metadata', () => {
      assert.doesNotMatch(mapped.result.values.get('set-server-meta') ?? '', /allowed/);
    });
  });

  describe('mapped-file (server as nobody)', () => {
    const meta = (...path: string[]) => {
      const name = path.pop()!;
      return readFileSync(join(mappedFile.dir, ...path, '.virtfs_metadata', name), 'utf8');
    };
    const fields = (uid: number, gid: number, mode: number, rdev?: number) =>
      `virtfs.uid=${uid}\nvirtfs.gid=${gid}\nvirtfs.mode=${mode}\n${rdev === undefined ? '' : `virtfs.rdev=${rdev}\n`}`;

    test('every guest check passes', () => assertGuestRan(mappedFile));

    test('the guest sees exactly what it sees through passthrough', () => {
      assert.deepEqual(Object.fromEntries(guestView(mappedFile)), Object.fromEntries(guestView(passthrough)));
    });

    test('the host holds only the server user’s plain files and directories, 0600/0700 (and ACLs), metadata included', () => {
      const objects = allUnder(mappedFile.dir);
      assert.ok(objects.some((p) => p.endsWith('/.virtfs_metadata')), 'no metadata directory');
      assert.ok(objects.length > 40, `only ${objects.length} objects`);
      for (const p of objects) {
        assertPlainServerObject(p, true);
        assert.equal(hostXattr(p, 'user.virtfs.uid'), null, `${p} has mapped-xattr metadata`);
      }
    });

    test('the guest’s view is stored as QEMU stores it (.virtfs_metadata/NAME, decimal text)', () => {
      assert.equal(mappedFile.result.values.get('acl-mode'), '4775');
      assert.equal(meta('m', 'file'), fields(1001, 1002, 0o104775));
      assert.equal(meta('m', 'dir'), fields(1003, 1004, 0o043775));
      assert.equal(meta('m', 'link'), fields(1005, 1006, 0o120777));
      assert.equal(readFileSync(join(mappedFile.dir, 'm', 'link'), 'utf8'), 'file');
      assert.equal(meta('m', 'fifo'), fields(1007, 1008, 0o010644, 0));
      assert.equal(meta('m', 'cdev'), fields(0, 0, 0o020644, 0x103));
      assert.equal(meta('m', 'bdev'), fields(0, 0, 0o060644, 0x801));
      assert.equal(meta('m', 'dir', 'inner'), fields(0, 1004, 0o100644)); // the setgid directory's group
      // the hard link's metadata is the same file as the original's, as QEMU links it
      const ino = (...p: string[]) => lstatSync(join(mappedFile.dir, 'm', '.virtfs_metadata', ...p)).ino;
      assert.equal(ino('hard'), ino('file'));
    });

    test('ACLs are real ACLs on the host file, as QEMU’s mapped-file keeps them; trusted.* is inert under user.virtfs.', () => {
      assertXattrsKeptInert(mappedFile, 'host');
    });

    test('the guest cannot set the server’s own metadata', () => {
      assert.doesNotMatch(mappedFile.result.values.get('set-server-meta') ?? '', /allowed/);
    });
  });

  describe('none (server as nobody)', () => {
    // An unprivileged server cannot make devices or set trusted.*; listings and copies lack the devices.
    const refused = ['mknod-char', 'mknod-block', 'readdir', 'ls-types', 'cp-a', 'tar-x', 'setfattr-trusted', 'getfattr-trusted'];

    test('every guest check passes but the ones that need host privilege', () => assertGuestRan(none, refused));

    test('chown is accepted and ignored: objects stay the server user’s', () => {
      assert.equal(none.result.checks.get('mknod-char')?.ok, false);
      const st = lstatSync(join(none.dir, 'm', 'file'));
      assert.equal(st.uid, NOBODY);
      assert.match(none.result.values.get('stat-file') ?? '', new RegExp(`^\\S+ ${NOBODY} `));
      assert.equal(lstatSync(join(none.dir, 'm', 'link')).isSymbolicLink(), true);
    });
  });
});
