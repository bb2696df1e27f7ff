import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { message } from '../../src/protocol/codec.js';
import { NOFID, NOTAG } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { isMessage, type Message } from '../../src/protocol/messages.js';
import { attached, negotiated, RawPeer, startFixture, type Fixture } from './server-fixture.js';

function frame(type: number, tag: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(7 + body.length);
  b.writeUInt32LE(b.length, 0);
  b[4] = type;
  b.writeUInt16LE(tag, 5);
  body.copy(b, 7);
  return b;
}

function assertError(r: Message | null, tag: number, errno: number): void {
  assert.ok(r, 'connection closed instead of an Rlerror');
  assert.ok(isMessage(r, 'Rlerror'), `expected Rlerror, got type ${r.type}`);
  assert.equal(r.tag, tag);
  assert.equal(r.ecode, errno);
}

/** The connection still answers: a Tgetattr on the root fid succeeds. */
async function assertStillServing(p: RawPeer): Promise<void> {
  p.send(message('Tgetattr', { tag: 77, fid: 0, requestMask: 0x7ffn }));
  const r = await p.next();
  assert.ok(r && isMessage(r, 'Rgetattr') && r.tag === 77, 'server stopped serving the connection');
}

describe('bad input from a client', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture();
  });
  after(async () => {
    await fx.close();
  });

  test('an unknown message type gets Rlerror(EOPNOTSUPP) and the connection keeps working', async () => {
    const p = await attached(fx.port);
    p.send(frame(99, 5, Buffer.from([1, 2, 3])));
    assertError(await p.next(), 5, Errno.EOPNOTSUPP);
    await assertStillServing(p);
    p.close();
  });

  test('legacy 9P2000 Topen and Tstat get Rlerror(EOPNOTSUPP)', async () => {
    const p = await attached(fx.port);
    p.send(frame(112, 6, Buffer.from([0, 0, 0, 0, 0])));
    assertError(await p.next(), 6, Errno.EOPNOTSUPP);
    p.send(frame(124, 7, Buffer.from([0, 0, 0, 0])));
    assertError(await p.next(), 7, Errno.EOPNOTSUPP);
    p.close();
  });

  test('a reply-type message sent as a request gets Rlerror(EOPNOTSUPP)', async () => {
    const p = await attached(fx.port);
    p.send(frame(111, 8, Buffer.from([0, 0])));
    assertError(await p.next(), 8, Errno.EOPNOTSUPP);
    p.close();
  });

  test('a truncated body gets Rlerror(EPROTO) and the connection keeps working', async () => {
    const p = await attached(fx.port);
    // Twalk whose one name claims 200 bytes but carries 3.
    const body = Buffer.from([0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 200, 0, 0x61, 0x62, 0x63]);
    p.send(frame(110, 9, body));
    assertError(await p.next(), 9, Errno.EPROTO);
    await assertStillServing(p);
    p.close();
  });

  test('a Twalk of 17 names is refused without creating newfid', async () => {
    const p = await attached(fx.port);
    const names = Array.from({ length: 17 }, () => Buffer.from('a'));
    const body = Buffer.concat([Buffer.from([0, 0, 0, 0, 1, 0, 0, 0, 17, 0]), ...names.map((n) => Buffer.concat([Buffer.from([1, 0]), n]))]);
    p.send(frame(110, 10, body));
    const r = await p.next();
    assert.ok(r && isMessage(r, 'Rlerror') && r.tag === 10);
    p.send(message('Tclunk', { tag: 11, fid: 1 }));
    assertError(await p.next(), 11, Errno.EBADF);
    p.close();
  });

  test('a frame larger than msize gets Rlerror(EINVAL) by its tag, and the frames after it are served', async () => {
    const p = await attached(fx.port);
    const big = Buffer.alloc(9000);
    big.writeUInt32LE(big.length, 0);
    big[4] = 118; // Twrite
    big.writeUInt16LE(12, 5);
    p.send(big.subarray(0, 4000));
    p.send(big.subarray(4000));
    assertError(await p.next(), 12, Errno.EINVAL);
    await assertStillServing(p);
    p.close();
  });

  test('a size field smaller than a header closes that connection only', async () => {
    const bad = await attached(fx.port);
    const good = await attached(fx.port);
    bad.send(Buffer.from([3, 0, 0, 0, 100, 0, 0]));
    assert.equal(await bad.waitClosed(), true);
    await assertStillServing(good);
    good.close();
  });

  test('random garbage from one client never disturbs another', async () => {
    const good = await attached(fx.port);
    for (let i = 0; i < 20; i++) {
      const bad = await RawPeer.connect(fx.port);
      const junk = Buffer.alloc(64 + i * 13);
      for (let k = 0; k < junk.length; k++) junk[k] = (k * 131 + i * 17) & 0xff;
      bad.send(junk);
      bad.close();
    }
    await assertStillServing(good);
    good.close();
  });

  test('requests before Tversion get Rlerror(EPROTO)', async () => {
    const p = await RawPeer.connect(fx.port);
    p.send(message('Tattach', { tag: 1, fid: 0, afid: NOFID, uname: 'root', aname: '', nUname: 0 }));
    assertError(await p.next(), 1, Errno.EPROTO);
    p.close();
  });

  test('an unknown fid gets Rlerror(EBADF) and a Tclunk of it is answered', async () => {
    const p = await attached(fx.port);
    p.send(message('Tgetattr', { tag: 2, fid: 4242, requestMask: 0x7ffn }));
    assertError(await p.next(), 2, Errno.EBADF);
    p.send(message('Tclunk', { tag: 3, fid: 4242 }));
    assertError(await p.next(), 3, Errno.EBADF);
    await assertStillServing(p);
    p.close();
  });

  test('attaching with an afid is refused (there is no authentication)', async () => {
    const p = await negotiated(fx.port);
    p.send(message('Tauth', { tag: 1, afid: 5, uname: 'root', aname: '', nUname: 0 }));
    assertError(await p.next(), 1, Errno.EOPNOTSUPP);
    p.send(message('Tattach', { tag: 2, fid: 0, afid: 5, uname: 'root', aname: '', nUname: 0 }));
    assertError(await p.next(), 2, Errno.EINVAL);
    p.close();
  });

  test('an aname other than the export is refused', async () => {
    const p = await negotiated(fx.port);
    p.send(message('Tattach', { tag: 1, fid: 0, afid: NOFID, uname: 'root', aname: '/etc', nUname: 0 }));
    assertError(await p.next(), 1, Errno.ENOENT);
    p.close();
  });
});

describe('version negotiation', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ limits: { maxMsize: 65536 } });
  });
  after(async () => {
    await fx.close();
  });

  test('msize is the smaller of the client and server maximum', async () => {
    const p = await RawPeer.connect(fx.port);
    p.send(message('Tversion', { tag: NOTAG, msize: 1 << 20, version: '9P2000.L' }));
    const r = await p.next();
    assert.ok(r && isMessage(r, 'Rversion'));
    assert.equal(r.msize, 65536);
    assert.equal(r.version, '9P2000.L');
    p.close();
  });

  test('plain 9P2000 and 9P2000.u are answered "unknown"', async () => {
    for (const version of ['9P2000', '9P2000.u', 'bogus']) {
      const p = await RawPeer.connect(fx.port);
      p.send(message('Tversion', { tag: NOTAG, msize: 8192, version }));
      const r = await p.next();
      assert.ok(r && isMessage(r, 'Rversion'));
      assert.equal(r.version, 'unknown', version);
      p.close();
    }
  });

  test('an msize below 4096 is refused', async () => {
    const p = await RawPeer.connect(fx.port);
    p.send(message('Tversion', { tag: NOTAG, msize: 2048, version: '9P2000.L' }));
    assertError(await p.next(), NOTAG, Errno.EMSGSIZE);
    p.close();
  });

  test('Tversion resets the session: earlier fids are gone', async () => {
    const p = await attached(fx.port);
    p.send(message('Tversion', { tag: NOTAG, msize: 8192, version: '9P2000.L' }));
    assert.ok(isMessage((await p.next())!, 'Rversion'));
    p.send(message('Tgetattr', { tag: 4, fid: 0, requestMask: 0x7ffn }));
    assertError(await p.next(), 4, Errno.EBADF);
    p.close();
  });
});

describe('memory a client can make the server hold', () => {
  let fx: Fixture;
  before(async () => {
    fx = await startFixture({ limits: { maxXattrBytesPerConnection: 100_000 } });
  });
  after(async () => {
    await fx.close();
  });

  /** Clone the root fid into `fid` and prepare it for an xattr value of `size` bytes. */
  async function xattrcreate(p: RawPeer, fid: number, size: number): Promise<Message | null> {
    p.send(message('Twalk', { tag: 2, fid: 0, newfid: fid, wnames: [] }));
    assert.ok(isMessage((await p.next())!, 'Rwalk'));
    p.send(message('Txattrcreate', { tag: 3, fid, name: Buffer.from('user.big'), attrSize: BigInt(size), flags: 0 }));
    return p.next();
  }

  test('pending xattr values beyond the per-connection budget are ENOSPC, and clunking gives the room back', async () => {
    const p = await attached(fx.port);
    assert.ok(isMessage((await xattrcreate(p, 10, 65536))!, 'Rxattrcreate'));
    assertError(await xattrcreate(p, 11, 65536), 3, Errno.ENOSPC);
    // Another connection has a budget of its own.
    const q = await attached(fx.port);
    assert.ok(isMessage((await xattrcreate(q, 10, 65536))!, 'Rxattrcreate'));
    q.close();
    // The fid that failed is still a plain fid; once fid 10 lets go (its value was never
    // written, so the clunk reports EINVAL), the room is there again.
    p.send(message('Tclunk', { tag: 4, fid: 10 }));
    assertError(await p.next(), 4, Errno.EINVAL);
    p.send(message('Txattrcreate', { tag: 5, fid: 11, name: Buffer.from('user.big'), attrSize: 65536n, flags: 0 }));
    assert.ok(isMessage((await p.next())!, 'Rxattrcreate'));
    p.close();
  });

  test('values read by Txattrwalk count against the same budget', async () => {
    const p = await attached(fx.port);
    // A 4000-byte value (small enough for any host filesystem's xattr space), held by one fid
    // after another: the 26th would take the connection past 100 000 bytes.
    assert.ok(isMessage((await xattrcreate(p, 20, 4000))!, 'Rxattrcreate'));
    p.send(message('Twrite', { tag: 4, fid: 20, offset: 0n, data: Buffer.alloc(4000, 7) }));
    assert.ok(isMessage((await p.next())!, 'Rwrite'));
    p.send(message('Tclunk', { tag: 5, fid: 20 }));
    assert.ok(isMessage((await p.next())!, 'Rclunk'));
    for (let i = 0; i < 25; i++) {
      p.send(message('Txattrwalk', { tag: 6, fid: 0, newfid: 100 + i, name: Buffer.from('user.big') }));
      const r = await p.next();
      assert.ok(r && isMessage(r, 'Rxattrwalk') && r.size === 4000n, `walk ${i}`);
    }
    p.send(message('Txattrwalk', { tag: 7, fid: 0, newfid: 200, name: Buffer.from('user.big') }));
    assertError(await p.next(), 7, Errno.ENOSPC);
    p.send(message('Tclunk', { tag: 8, fid: 200 }));
    assertError(await p.next(), 8, Errno.EBADF);
    p.send(message('Tclunk', { tag: 9, fid: 100 }));
    assert.ok(isMessage((await p.next())!, 'Rclunk'));
    p.send(message('Txattrwalk', { tag: 10, fid: 0, newfid: 200, name: Buffer.from('user.big') }));
    assert.ok(isMessage((await p.next())!, 'Rxattrwalk'));
    p.close();
  });
});
