import { HEADER_SIZE } from './constants.js';
import { defOf, defs, type Message, type MessageDef, type MessageName } from './messages.js';
import { DecodeError, WireReader, WireWriter } from './wire.js';

export interface FrameHeader {
  size: number;
  type: number;
  tag: number;
}

/** The header of a frame that holds at least HEADER_SIZE bytes. */
export function readHeader(frame: Buffer): FrameHeader {
  return { size: frame.readUInt32LE(0), type: frame[4]!, tag: frame.readUInt16LE(5) };
}

/**
 * Decode one whole frame (size[4] included) into a message. Variable-length fields are views of
 * `frame`, not copies. Throws DecodeError for an unknown type, a truncated body or trailing bytes.
 */
export function decode(frame: Buffer): Message {
  if (frame.length < HEADER_SIZE) throw new DecodeError(`frame of ${frame.length} bytes is shorter than a header`);
  const { size, type, tag } = readHeader(frame);
  if (size !== frame.length) throw new DecodeError(`frame says ${size} bytes but holds ${frame.length}`);
  const d = defOf(type);
  if (!d) throw new DecodeError(`unknown message type ${type}`);
  return decodeBody(d, tag, frame) as Message;
}

function decodeBody(d: MessageDef, tag: number, frame: Buffer): Record<string, unknown> {
  const r = new WireReader(frame, HEADER_SIZE);
  const m: Record<string, unknown> = { type: d.type, tag };
  for (const [name, field] of d.fields) m[name] = field.read(r);
  if (r.remaining !== 0) throw new DecodeError(`${d.name} has ${r.remaining} trailing bytes`);
  return m;
}

/** Bytes the encoded message occupies, header included. */
export function encodedSize(m: Message): number {
  const d = defOf(m.type)!;
  let n = HEADER_SIZE;
  const rec = m as unknown as Record<string, unknown>;
  for (const [name, field] of d.fields) n += field.size(rec[name]);
  return n;
}

/**
 * Encode a message into a buffer of exactly its size. Small replies come from Node's shared
 * allocation pool (allocUnsafe), so the common case allocates no new backing store.
 */
export function encode(m: Message): Buffer {
  const d = defOf(m.type);
  if (!d) throw new RangeError(`cannot encode unknown message type ${m.type}`);
  const size = encodedSize(m);
  const buf = Buffer.allocUnsafe(size);
  const w = new WireWriter(buf);
  w.u32(size);
  w.u8(d.type);
  w.u16(m.tag);
  const rec = m as unknown as Record<string, unknown>;
  for (const [name, field] of d.fields) field.write(w, rec[name]);
  return buf;
}

/** Build a message object with its type filled in from its name. */
export function message<N extends MessageName>(name: N, fields: Omit<Message<N>, 'type'>): Message<N> {
  return { ...fields, type: defs[name].type } as unknown as Message<N>;
}
