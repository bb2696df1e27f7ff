import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guestXattrList, guestXattrName, hostXattrName } from '../../src/backend/local/mapped-xattr-names.js';
import { Errno, P9Error } from '../../src/protocol/errno.js';

const b = (s: string) => Buffer.from(s);
const errno = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as P9Error).errno;
  }
  return 0;
};

test('user.* stays as it is; ACLs, security.* and trusted.* go under user.virtfs.', () => {
  assert.equal(hostXattrName(b('user.note'), 'set').toString(), 'user.note');
  assert.equal(hostXattrName(b('system.posix_acl_access'), 'get').toString(), 'user.virtfs.system.posix_acl_access');
  assert.equal(hostXattrName(b('system.posix_acl_default'), 'set').toString(), 'user.virtfs.system.posix_acl_default');
  assert.equal(hostXattrName(b('security.capability'), 'set').toString(), 'user.virtfs.security.capability');
  assert.equal(hostXattrName(b('trusted.overlay.opaque'), 'get').toString(), 'user.virtfs.trusted.overlay.opaque');
});

test('the server’s own user.virtfs.* is out of reach: ENODATA to read, EACCES to change', () => {
  assert.equal(errno(() => hostXattrName(b('user.virtfs.uid'), 'get')), Errno.ENODATA);
  assert.equal(errno(() => hostXattrName(b('user.virtfs.uid'), 'set')), Errno.EACCES);
  assert.equal(errno(() => hostXattrName(b('user.virtfs.security.capability'), 'set')), Errno.EACCES);
});

test('other namespaces are EOPNOTSUPP (and no other system.* name sneaks through)', () => {
  for (const n of ['system.nfs4_acl', 'btrfs.compression', 'system.posix_acl_accessX', 'userx']) {
    assert.equal(errno(() => hostXattrName(b(n), 'set')), Errno.EOPNOTSUPP, n);
  }
});

test('a host listing shows the guest its own names and nothing of the server’s or the host’s', () => {
  const host = ['user.note', 'user.virtfs.uid', 'user.virtfs.mode', 'user.virtfs.system.posix_acl_access', 'user.virtfs.trusted.overlay.opaque', 'security.selinux', 'system.posix_acl_access', 'user.virtfs.other'];
  const list = guestXattrList(Buffer.from(host.map((n) => `${n}\0`).join('')));
  assert.deepEqual(list.toString().split('\0').filter(Boolean), ['user.note', 'system.posix_acl_access', 'trusted.overlay.opaque']);
  assert.equal(guestXattrName(b('security.selinux')), null);
});

test('with ACLs on the host (mapped-file), ACLs keep their names both ways; the rest is as in mapped-xattr', () => {
  assert.equal(hostXattrName(b('system.posix_acl_access'), 'set', 'host').toString(), 'system.posix_acl_access');
  assert.equal(hostXattrName(b('system.posix_acl_default'), 'get', 'host').toString(), 'system.posix_acl_default');
  assert.equal(hostXattrName(b('trusted.overlay.opaque'), 'set', 'host').toString(), 'user.virtfs.trusted.overlay.opaque');
  assert.equal(errno(() => hostXattrName(b('user.virtfs.uid'), 'set', 'host')), Errno.EACCES);
  const host = ['system.posix_acl_access', 'user.virtfs.system.posix_acl_access', 'user.virtfs.security.capability', 'trusted.x', 'user.note'];
  const list = guestXattrList(Buffer.from(host.map((n) => `${n}\0`).join('')), 'host');
  assert.deepEqual(list.toString().split('\0').filter(Boolean), ['system.posix_acl_access', 'security.capability', 'user.note']);
});
