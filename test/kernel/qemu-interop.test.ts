import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runGuest, type GuestResult } from './qemu-guest.js';
import { startVirtfs } from './virtfs-process.js';

// A tree made through QEMU's own 9p server (mapped-xattr) is served by virtfs with identical
// stat for every object, and a tree made through virtfs is served identically by QEMU: the two
// share one on-disk format. QEMU's server runs inside the guest's emulator as a virtio device.
const make = readFileSync(new URL('../../../test/kernel/models.sh', import.meta.url), 'utf8');
const statTree = readFileSync(new URL('../../../test/kernel/stat-tree.sh', import.meta.url), 'utf8');

function qemuServerArgs(dir: string): { qemuArgs: string[]; mountCommand: string } {
  return {
    qemuArgs: ['-fsdev', `local,id=fs0,path=${dir},security_model=mapped-xattr`, '-device', 'virtio-9p-pci,fsdev=fs0,mount_tag=share'],
    mountCommand: 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,posixacl share /mnt',
  };
}

async function throughVirtfs(dir: string, script: string): Promise<GuestResult> {
  const server = await startVirtfs(dir, ['--security-model', 'mapped-xattr']);
  try {
    return await runGuest({ port: server.port, script, mountOptions: ',posixacl', timeoutMs: 6 * 60_000 });
  } finally {
    await server.stop();
  }
}

function throughQemu(dir: string, script: string): Promise<GuestResult> {
  return runGuest({ port: 0, script, timeoutMs: 6 * 60_000, ...qemuServerArgs(dir) });
}

function tree(r: GuestResult): Record<string, string> {
  const tail = r.console.split('\n').slice(-30).join('\n');
  assert.equal(r.finished, true, `guest did not finish:\n${tail}`);
  return Object.fromEntries([...r.values].filter(([k]) => /^(tree|acl|xattrs):/.test(k)));
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

describe('interoperability with QEMU’s mapped-xattr format', { timeout: 30 * 60_000 }, () => {
  const dirs: string[] = [];
  let qemuMade: { made: GuestResult; byQemu: GuestResult; byVirtfs: GuestResult };
  let virtfsMade: { made: GuestResult; byVirtfs: GuestResult; byQemu: GuestResult };

  before(async () => {
    const a = mkdtempSync(join(tmpdir(), 'virtfs-interop-'));
    const b = mkdtempSync(join(tmpdir(), 'virtfs-interop-'));
    dirs.push(a, b);
    const madeA = await throughQemu(a, make);
    qemuMade = { made: madeA, byQemu: await throughQemu(a, statTree), byVirtfs: await throughVirtfs(a, statTree) };
    const madeB = await throughVirtfs(b, make);
    virtfsMade = { made: madeB, byVirtfs: await throughVirtfs(b, statTree), byQemu: await throughQemu(b, statTree) };
  });

  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('QEMU’s server made the whole tree', () => {
    assert.equal(qemuMade.made.finished, true, qemuMade.made.console.slice(-2000));
    assert.ok(Object.keys(tree(qemuMade.byQemu)).length > 30);
  });

  test('virtfs shows a tree QEMU made exactly as QEMU shows it: type, mode, owner, rdev, size, links, targets, ACLs, xattrs', () => {
    assert.deepEqual(tree(qemuMade.byVirtfs), tree(qemuMade.byQemu));
  });

  test('QEMU shows a tree virtfs made exactly as virtfs shows it (but the trusted.* attributes QEMU hides)', () => {
    assert.equal(virtfsMade.made.finished, true, virtfsMade.made.console.slice(-2000));
    assert.deepEqual(tree(virtfsMade.byQemu), treeQemuCanHold(virtfsMade.byVirtfs));
    assert.match(tree(virtfsMade.byVirtfs)['xattrs:m/dir']!, /trusted\.overlay\.opaque="y"/);
  });

  test('both servers made the same tree (but the trusted.* attributes QEMU refuses)', () => {
    assert.deepEqual(treeQemuCanHold(virtfsMade.byVirtfs), tree(qemuMade.byQemu));
  });
});
