import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Client } from '../../src/client/client.js';
import { LinuxOpenFlag as O, SetattrValid as V } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import type { HostPrivilege, ServeOptions } from '../../src/index.js';
import { startServer } from '../../src/index.js';
import { hostXattr } from './host-xattr.js';
import { startFixture, type Fixture } from './server-fixture.js';

// The local-root attack of the hardening issue: with the server run as root, any local user who
// can connect attaches as uid 0 and makes a root-owned setuid program, a program with file
// capabilities, device nodes reaching host hardware, or trusted.*/security.* attributes. By
// default none of these is made on the host; an export that wants them says so.

/** cap_setuid permitted and effective, VFS_CAP_REVISION_2. */
const CAP_SETUID = Buffer.from('01000002' + '80000000' + '00000000' + '00000000' + '00000000', 'hex');

interface Server {
  fx: Fixture;
  c: Client;
  root: number;
  warnings: string[];
}

async function serve(opts: Partial<ServeOptions>): Promise<Server> {
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void warnings.push(s) });
  const fx = await startFixture({ ...opts, log });
  const c = await Client.connect(fx.address);
  return { fx, c, root: await c.attach({ nUname: 0 }), warnings };
}

async function close(s: Server | undefined): Promise<void> {
  if (!s) return;
  await s.c.close();
  await s.fx.close();
}

/** Every privileged thing the attack makes; each resolves to null when made, or the errno refusing it. */
async function attempts(s: Server): Promise<Record<string, number | null>> {
  const { c, root } = s;
  const outcome = (p: Promise<unknown>) => p.then(() => null, (err: { errno?: number }) => err.errno ?? -1);
  const fresh = async () => (await c.walk(root, [])).fid;
  writeFileSync(join(s.fx.root, 'prog'), '#!/bin/sh\n', { mode: 0o755 });
  const prog = (await c.walk(root, ['prog'])).fid;
  return {
    'create 04755': await outcome(c.create(await fresh(), 'suid', O.RDWR, 0o104755, 0)),
    'create 02755': await outcome(c.create(await fresh(), 'sgid', O.RDWR, 0o102755, 0)),
    'chmod 04755': await outcome(c.setattr(prog, { valid: V.MODE, mode: 0o4755 })),
    'mknod c 1:1': await outcome(c.mknod(root, 'mem', 0o020666, 1, 1, 0)),
    'mknod c 1:11': await outcome(c.mknod(root, 'kmsg', 0o020666, 1, 11, 0)),
    'mknod b 254:0': await outcome(c.mknod(root, 'disk', 0o060666, 254, 0, 0)),
    'security.capability': await outcome(c.xattrSet(prog, 'security.capability', CAP_SETUID)),
    'trusted.overlay.opaque': await outcome(c.xattrSet(prog, 'trusted.overlay.opaque', Buffer.from('y'))),
    'security.selinux': await outcome(c.xattrSet(prog, 'security.selinux', Buffer.from('system_u:object_r:shadow_t:s0'))),
    'security.ima': await outcome(c.xattrSet(prog, 'security.ima', Buffer.from([4, 1, 2, 3]))),
  };
}

/** What an unprivileged-looking guest does all day still works: fifos, setgid directories, user.*, ACLs. */
async function ordinary(s: Server): Promise<void> {
  const { c, root } = s;
  await c.mknod(root, 'fifo', 0o010644, 0, 0, 0);
  await c.mkdir(root, 'shared', 0o775, 0);
  await c.setattr((await c.walk(root, ['shared'])).fid, { valid: V.MODE, mode: 0o2775 });
  const prog = (await c.walk(root, ['prog'])).fid;
  await c.xattrSet(prog, 'user.note', Buffer.from('ok'));
  await c.setattr(prog, { valid: V.MODE, mode: 0o750 });
  assert.equal(lstatSync(join(s.fx.root, 'shared')).mode & 0o7777, 0o2775);
}

const everything = (v: number | null) => (o: Record<string, number | null>) => Object.fromEntries(Object.keys(o).map((k) => [k, v]));

for (const model of ['passthrough', 'none'] as const) {
  describe(`host privilege in ${model}, by default`, () => {
    let s: Server;
    before(async () => (s = await serve({ security: { model } })));
    after(() => close(s));

    test('every privileged object of the attack is refused with EPERM, and nothing of it reaches the host', async () => {
      const r = await attempts(s);
      assert.deepEqual(r, everything(Errno.EPERM)(r));
      const p = (n: string) => join(s.fx.root, n);
      for (const n of ['suid', 'sgid', 'mem', 'kmsg', 'disk']) assert.equal(existsSync(p(n)), false, n);
      assert.equal(statSync(p('prog')).mode & 0o7777, 0o755);
      for (const x of ['security.capability', 'trusted.overlay.opaque', 'security.selinux', 'security.ima']) assert.equal(hostXattr(p('prog'), x), null, x);
    });

    test('the log says once per kind which flag allows it', () => {
      const lines = s.warnings.map((l) => JSON.parse(l) as { msg: string; privilege: HostPrivilege });
      assert.deepEqual(lines.map((l) => l.privilege).sort(), ['devices', 'setid', 'xattrs']);
      assert.match(lines.find((l) => l.privilege === 'setid')!.msg, /--allow-privileged setid/);
    });

    test('fifos, setgid directories, plain chmod and user.* attributes still work', () => ordinary(s));
  });
}

describe('host privilege in passthrough with --allow-privileged all', () => {
  let s: Server;
  before(async () => (s = await serve({ allowPrivileged: ['devices', 'setid', 'xattrs'] })));
  after(() => close(s));

  test('the export that asks for them gets each one, on the host', async () => {
    const r = await attempts(s);
    assert.deepEqual(r, everything(null)(r));
    const p = (n: string) => join(s.fx.root, n);
    assert.equal(statSync(p('suid')).mode & 0o7777, 0o4755);
    assert.equal(statSync(p('prog')).mode & 0o7777, 0o4755);
    assert.equal(lstatSync(p('mem')).isCharacterDevice(), true);
    assert.equal(lstatSync(p('disk')).isBlockDevice(), true);
    assert.deepEqual(hostXattr(p('prog'), 'security.capability'), CAP_SETUID);
    assert.equal(hostXattr(p('prog'), 'trusted.overlay.opaque')?.toString(), 'y');
  });
});

describe('host privilege in mapped-xattr: nothing needs allowing, nothing is privileged on the host', () => {
  let s: Server;
  before(async () => (s = await serve({ security: { model: 'mapped-xattr' } })));
  after(() => close(s));

  test('the guest gets every one of them; the host holds plain 0600 files and inert attributes', async () => {
    const r = await attempts(s);
    assert.deepEqual(r, everything(null)(r));
    const p = (n: string) => join(s.fx.root, n);
    for (const n of ['suid', 'mem', 'disk']) {
      const st = lstatSync(p(n));
      assert.equal(st.isFile(), true, n);
      assert.equal(st.mode & 0o7777, 0o600, n);
    }
    assert.equal(hostXattr(p('prog'), 'security.capability'), null);
    assert.deepEqual(hostXattr(p('prog'), 'user.virtfs.security.capability'), CAP_SETUID);
  });
});

describe('unix sockets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'virtfs-sock-'));
  chmodSync(dir, 0o755); // so that only the socket's own mode keeps another user out
  after(() => rmSync(dir, { recursive: true, force: true }));

  const listen = async (name: string, socketMode?: number) => {
    const root = mkdtempSync(join(dir, 'export-'));
    return startServer({ root, listen: `unix:${join(dir, name)}`, socketMode, log: pino({ level: 'silent' }) });
  };

  test('are made 0600 by default, though the server serves with umask 0, so only its own user may connect', async () => {
    const running = await listen('default.sock');
    try {
      assert.equal(statSync(join(dir, 'default.sock')).mode & 0o777, 0o600);
      // another user is refused by the socket's permissions
      const script = `require('net').connect(process.argv[1]).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
      const asNobody = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script, join(dir, 'default.sock')], { encoding: 'utf8' });
      assert.equal(asNobody.trim(), 'EACCES');
      assert.equal(process.umask(), 0, 'the server’s umask is restored after the socket is made');
    } finally {
      await running.close();
    }
  });

  test('take --socket-mode to let a group in', async () => {
    const running = await listen('group.sock', 0o660);
    try {
      assert.equal(statSync(join(dir, 'group.sock')).mode & 0o777, 0o660);
    } finally {
      await running.close();
    }
  });
});
