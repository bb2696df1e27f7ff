import { HEADER_SIZE } from '../../src/protocol/constants.js';
import { decode } from '../../src/protocol/codec.js';
import { MessageType, type Message } from '../../src/protocol/messages.js';

/** Rread data above this is counted and dropped as it streams in, never joined. */
const DROPPED_READ = 16 << 10;
/** size[4] type[1] tag[2] count[4]. */
const RREAD_HEADER = HEADER_SIZE + 4;

/**
 * Cuts the load generator's reply stream into messages. The data of a large Rread is dropped as
 * it arrives: the rows check its length, never its bytes, and joining each 1 MiB reply from the
 * socket's 64 KiB reads made the generator, not the server, set the sequential-read rate. Its
 * `data` is then a view of a shared scratch buffer, of the right length and meaningless content.
 */
export class ReplyReader {
  private readonly head = Buffer.alloc(RREAD_HEADER);
  private headFill = 0;
  /** The frame being received: its size, and its pieces so far (null while dropping data). */
  private size = 0;
  private pieces: Buffer[] | null = null;
  private got = 0;
  private dropping = 0;
  private scratch = Buffer.alloc(0);

  constructor(private readonly deliver: (m: Message) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.dropping > 0) {
        const n = Math.min(this.dropping, chunk.length - at);
        this.dropping -= n;
        at += n;
      } else if (this.pieces) {
        const n = Math.min(this.size - this.got, chunk.length - at);
        this.pieces.push(chunk.subarray(at, at + n));
        this.got += n;
        at += n;
        if (this.got === this.size) {
          const frame = Buffer.concat(this.pieces, this.size);
          this.pieces = null;
          this.deliver(decode(frame));
        }
      } else if (this.headFill === 0 && chunk.length - at >= HEADER_SIZE && chunk.readUInt32LE(at) <= chunk.length - at) {
        // A whole frame in the chunk: decoded from a view, nothing copied.
        const size = chunk.readUInt32LE(at);
        if (size < HEADER_SIZE) throw new Error(`malformed reply: size ${size}`);
        this.deliver(decode(chunk.subarray(at, at + size)));
        at += size;
      } else {
        // Gather the header (and Rread's count) before deciding what to do with the body.
        const want = this.headFill >= HEADER_SIZE && this.head[4] === MessageType.Rread ? RREAD_HEADER : HEADER_SIZE;
        const n = Math.min(want - this.headFill, chunk.length - at);
        chunk.copy(this.head, this.headFill, at, at + n);
        this.headFill += n;
        at += n;
        if (this.headFill === want && (want === RREAD_HEADER || this.head[4] !== MessageType.Rread)) this.startFrame();
      }
    }
  }

  private startFrame(): void {
    const size = this.head.readUInt32LE(0);
    if (size < this.headFill) throw new Error(`malformed reply: size ${size}`);
    const header = Buffer.from(this.head.subarray(0, this.headFill));
    this.headFill = 0;
    if (this.head[4] === MessageType.Rread && size - RREAD_HEADER > DROPPED_READ) {
      const count = size - RREAD_HEADER;
      if (this.scratch.length < count) this.scratch = Buffer.alloc(count);
      this.dropping = count;
      this.deliver({ type: MessageType.Rread, tag: header.readUInt16LE(5), data: this.scratch.subarray(0, count) } as Message);
      return;
    }
    this.size = size;
    this.got = header.length;
    this.pieces = [header];
    if (this.got === size) {
      this.pieces = null;
      this.deliver(decode(header));
    }
  }
}
