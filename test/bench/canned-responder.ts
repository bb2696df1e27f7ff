import net from 'node:net';
import { encode, message } from '../../src/protocol/codec.js';
import { GetattrMask, QidType, VERSION_9P2000L } from '../../src/protocol/constants.js';
import { Errno } from '../../src/protocol/errno.js';
import { MessageType } from '../../src/protocol/messages.js';

/**
 * The floor of a 9P server in Node: a process that answers each request with a reply made once
 * at start (its tag patched in), written from the socket's read callback, with no filesystem,
 * no session and no promises. What a round trip costs it is what Node's socket path costs;
 * `round-trip.ts` compares the servers with it. Prints its port on stdout.
 */
const qid = { type: QidType.DIR, version: 0, path: 1n };
const canned = new Map<number, Buffer>([
  [MessageType.Tattach, encode(message('Rattach', { tag: 0, qid }))],
  [
    MessageType.Tgetattr,
    encode(
      message('Rgetattr', {
        tag: 0,
        valid: GetattrMask.BASIC,
        qid,
        mode: 0o40755,
        uid: 0,
        gid: 0,
        nlink: 2n,
        rdev: 0n,
        size: 4096n,
        blksize: 4096n,
        blocks: 8n,
        atimeSec: 0n,
        atimeNsec: 0n,
        mtimeSec: 0n,
        mtimeNsec: 0n,
        ctimeSec: 0n,
        ctimeNsec: 0n,
        btimeSec: 0n,
        btimeNsec: 0n,
        gen: 0n,
        dataVersion: 0n,
      }),
    ),
  ],
  // Every fid but the attached one is unknown, as the round trips' Tclunk expects.
  [MessageType.Tclunk, encode(message('Rlerror', { tag: 0, ecode: Errno.EBADF }))],
]);
const unsupported = encode(message('Rlerror', { tag: 0, ecode: Errno.EOPNOTSUPP }));

// Frames are cut by hand rather than by the server's FrameSplitter: the floor is the least a
// Node server can do, and the splitter's own cost is part of what virtfs is measured for.
const server = net.createServer({ noDelay: true }, (socket) => {
  let held: Buffer | null = null;
  socket.on('data', (chunk: Buffer) => {
    let data = held ? Buffer.concat([held, chunk]) : chunk;
    held = null;
    while (data.length >= 7 && data.length >= data.readUInt32LE(0)) {
      const size = data.readUInt32LE(0);
      const type = data[4]!;
      const tag = data.readUInt16LE(5);
      let reply: Buffer;
      if (type === MessageType.Tversion) {
        reply = encode(message('Rversion', { tag, msize: data.readUInt32LE(7), version: VERSION_9P2000L }));
      } else {
        reply = Buffer.from(canned.get(type) ?? unsupported);
        reply.writeUInt16LE(tag, 5);
      }
      socket.write(reply);
      data = data.subarray(size);
    }
    if (data.length) held = Buffer.from(data);
  });
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
