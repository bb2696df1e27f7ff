import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';
import { hostXattr } from '../integration/host-xattr.js';

// A tree made through QEMU's own 9p server is served by virtfs with identical stat for every
// object, and a tree made through virtfs is served identically by QEMU, in each mapped model: the
// two share one on-disk format. QEMU's server runs inside the guest's emulator as a virtio device.
const make = readFileSync(new URL('../../../test/kernel/models.sh', import.meta.url), 'utf8');
const statTree = readFileSync(new URL('../../../test/kernel/stat-tree.sh', import.meta.url), 'utf8');

type Model = 'mapped-xattr' | 'mapped-file';

function qemuServerArgs(dir: string, model: Model): { qemuArgs: string[]; mountCommand: string } {
  return {
    qemuArgs: ['-fsdev', `local,id=fs0,path=${dir},security_model=${model}`, '-device', 'virtio-9p-pci,fsdev=fs0,mount_tag=share'],
    mountCommand: 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,posixacl share /mnt',
  };
}

async function throughVirtfs(dir: string, model: Model, script: string): Promise<GuestResult> {
  const server = await startVirtfs(dir, ['--security-model', model]);
  try {
    return await runGuest({ port: server.port, script, mountOptions: ',posixacl', timeoutMs: 6 * 60_000 });
  } finally {
    await server.stop();
  }
}

function throughQemu(dir: string, model: Model, script: string): Promise<GuestResult> {
  return runGuest({ port: 0, script, timeoutMs: 6 * 60_000, ...qemuServerArgs(dir, model) });
}

function tree(r: GuestResult): Record<string, string> {
  const tail = r.console.split('\n').slice(-30).join('\n');
  assert.equal(r.finished, true, `guest did not finish:\n${tail}`);
  return Object.fromEntries([...r.values].filter(([k]) => /^(tree|acl|xattrs):/.test(k)));
}

/**
 * The same, less trusted.* and user.virtfs.* attributes: QEMU's mapped-file hands trusted.* to the
 * host kernel and lets the guest set user.virtfs.*, virtfs keeps trusted.* under user.virtfs.,
 * which stays the server's; so neither sees the other's.
 */
function treeBothKeep(r: GuestResult): Record<string, string> {
  const t = tree(r);
  for (const k of Object.keys(t)) {
    if (k.startsWith('xattrs:')) t[k] = t[k]!.split(' ').filter((x) => !/^(trusted\.|user\.virtfs\.)/.test(x)).join(' ');
  }
  return t;
}

/**
 * QEMU counts a directory's hidden .virtfs_metadata among its links; virtfs does not, as POSIX
 * counts subdirectories (pjdfstest's rename/24.t checks it). This is QEMU's count as virtfs gives it.
 */
function lessMetaDirLinks(t: Record<string, string>, hostDir: string): Record<string, string> {
  for (const k of Object.keys(t)) {
    if (k.startsWith('tree:') && existsSync(join(hostDir, k.slice('tree:'.length), '.virtfs_metadata'))) {
      t[k] = t[k]!.replace(/ (\d+)$/, (_, n: string) => ` ${Number(n) - 1}`);
    }
  }
  return t;
}

/**
 * The same, less trusted.* attributes: QEMU refuses (EOPNOTSUPP) and hides every namespace but
 * user.* and ACLs, where virtfs keeps security.* and trusted.* under user.virtfs. as well.
 */
function treeQemuCanHold(r: GuestResult): Record<string, string> {
  const t = tree(r);
  for (const k of Object.keys(t)) if (k.startsWith('xattrs:')) t[k] = t[k]!.replace(/ ?trusted\.\S+="[^"]*"/g, '');
  return t;
}

for (const model of ['mapped-xattr', 'mapped-file'] as const) {
  // What both servers keep alike: everything but trusted.* (and in mapped-file user.virtfs.*).
  const alike = model === 'mapped-xattr' ? treeQemuCanHold : treeBothKeep;
  const comparable = model === 'mapped-xattr' ? tree : treeBothKeep;
  const qemuView = (r: GuestResult, hostDir: string) => (model === 'mapped-xattr' ? tree(r) : lessMetaDirLinks(treeBothKeep(r), hostDir));
  const but = model === 'mapped-xattr' ? 'the trusted.* attributes QEMU refuses' : 'trusted.*, user.virtfs.* and directory link counts';

  describe(`interoperability with QEMU’s ${model} format`, { timeout: 30 * 60_000 }, () => {
    const dirs: string[] = [];
    let qemuMade: { made: GuestResult; byQemu: GuestResult; byVirtfs: GuestResult };
    let virtfsMade: { made: GuestResult; byVirtfs: GuestResult; byQemu: GuestResult };

    before(async () => {
      const a = mkdtempSync(join(tmpdir(), 'virtfs-interop-'));
      const b = mkdtempSync(join(tmpdir(), 'virtfs-interop-'));
      dirs.push(a, b);
      const madeA = await throughQemu(a, model, make);
      qemuMade = { made: madeA, byQemu: await throughQemu(a, model, statTree), byVirtfs: await throughVirtfs(a, model, statTree) };
      const madeB = await throughVirtfs(b, model, make);
      virtfsMade = { made: madeB, byVirtfs: await throughVirtfs(b, model, statTree), byQemu: await throughQemu(b, model, statTree) };
    });

    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    test('QEMU’s server made the whole tree', () => {
      assert.equal(qemuMade.made.finished, true, qemuMade.made.console.slice(-2000));
      assert.ok(Object.keys(tree(qemuMade.byQemu)).length > 30);
    });

    test(`virtfs shows a tree QEMU made exactly as QEMU shows it: type, mode, owner, rdev, size, links, targets, ACLs, xattrs${model === 'mapped-xattr' ? '' : ' (but trusted.*, user.virtfs.* and directory link counts)'}`, () => {
      assert.deepEqual(comparable(qemuMade.byVirtfs), qemuView(qemuMade.byQemu, dirs[0]!));
    });

    test(`QEMU shows a tree virtfs made exactly as virtfs shows it (but ${but})`, () => {
      assert.equal(virtfsMade.made.finished, true, virtfsMade.made.console.slice(-2000));
      assert.deepEqual(qemuView(virtfsMade.byQemu, dirs[1]!), alike(virtfsMade.byVirtfs));
      assert.match(tree(virtfsMade.byVirtfs)['xattrs:m/dir']!, /trusted\.overlay\.opaque="y"/);
    });

    test(`both servers made the same tree (but ${but})`, () => {
      assert.deepEqual(alike(virtfsMade.byVirtfs), qemuView(qemuMade.byQemu, dirs[0]!));
    });

    if (model === 'mapped-file') {
      test('both put a guest’s ACL on the host file, as real ACLs', () => {
        for (const d of dirs) {
          assert.ok(hostXattr(join(d, 'm', 'file'), 'system.posix_acl_access'), d);
          assert.equal(hostXattr(join(d, 'm', 'file'), 'user.virtfs.system.posix_acl_access'), null, d);
        }
      });

      test('where the two differ: QEMU lets the guest set user.virtfs.*, virtfs keeps it the server’s', () => {
        assert.match(qemuMade.made.values.get('set-server-meta') ?? '', /allowed/);
        assert.doesNotMatch(virtfsMade.made.values.get('set-server-meta') ?? '', /allowed/);
      });

      test('where the two differ: QEMU counts a directory’s .virtfs_metadata among its links, virtfs does not', () => {
        const links = (r: GuestResult) => Number(tree(r)['tree:m/dir']!.split(' ').pop());
        assert.equal(links(qemuMade.byQemu), links(qemuMade.byVirtfs) + 1);
        assert.equal(links(virtfsMade.byQemu), links(virtfsMade.byVirtfs) + 1);
      });
    }
  });
}
