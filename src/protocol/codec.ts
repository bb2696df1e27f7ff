import { HEADER_SIZE } from './constants.js';
import { compileCodec, type MessageCodec } from './compiled-codec.js';
import { defs, type Message, type MessageDef, type MessageName } from './messages.js';
import { DecodeError } from './wire.js';

export interface FrameHeader {
  size: number;
  type: number;
  tag: number;
}

/** The header of a frame that holds at least HEADER_SIZE bytes. */
export function readHeader(frame: Buffer): FrameHeader {
  return { size: frame.readUInt32LE(0), type: frame[4]!, tag: frame.readUInt16LE(5) };
}

const codecs = new Map<number, MessageCodec>(Object.values(defs).map((d) => [d.type, compileCodec(d as MessageDef)]));

/**
 * Decode one whole frame (size[4] included) into a message. Variable-length fields are views of
 * `frame`, not copies. Throws DecodeError for an unknown type, a truncated body or trailing bytes.
 */
export function decode(frame: Buffer): Message {
  if (frame.length < HEADER_SIZE) throw new DecodeError(`frame of ${frame.length} bytes is shorter than a header`);
  const { size, type, tag } = readHeader(frame);
  if (size !== frame.length) throw new DecodeError(`frame says ${size} bytes but holds ${frame.length}`);
  const c = codecs.get(type);
  if (!c) throw new DecodeError(`unknown message type ${type}`);
  return c.decode(frame, tag) as unknown as Message;
}

/** Bytes the encoded message occupies, header included. */
export function encodedSize(m: Message): number {
  return codecs.get(m.type)!.size(m);
}

/**
 * Encode a message into a buffer of exactly its size. Small replies come from Node's shared
 * allocation pool (allocUnsafe), so the common case allocates no new backing store.
 */
export function encode(m: Message): Buffer {
  const c = codecs.get(m.type);
  if (!c) throw new RangeError(`cannot encode unknown message type ${m.type}`);
  return c.encode(m);
}

/** Build a message object with its type filled in from its name. */
export function message<N extends MessageName>(name: N, fields: Omit<Message<N>, 'type'>): Message<N> {
  return { ...fields, type: defs[name].type } as unknown as Message<N>;
}
