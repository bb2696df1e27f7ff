import { MessageType, type Message } from '../protocol/messages.js';

/** size[4] type[1] tag[2] fid[4] offset[8] count[4]. */
const TWRITE_HEADER = 23;

/**
 * A Twrite whose payload is left in the pieces it arrived in (several socket reads), to be
 * written with one pwritev instead of joined first. `data` is the first piece alone: code that
 * knows nothing of `pieces` writes that much, and the client sends the rest again, as after any
 * short write.
 */
export type ScatteredTwrite = Message<'Twrite'> & { pieces?: readonly Buffer[] };

/** The payload of a Twrite, whole. */
export function twritePayload(m: ScatteredTwrite): readonly Buffer[] {
  return m.pieces ?? [m.data];
}

/**
 * Decode a frame of `size` bytes received as `pieces` if it is a well-formed Twrite whose header
 * lies in the first piece; null for anything else (the caller joins the pieces and decodes them
 * as usual, errors and all).
 */
export function decodeScatteredTwrite(pieces: readonly Buffer[], size: number): ScatteredTwrite | null {
  const first = pieces[0]!;
  if (first.length < TWRITE_HEADER || first[4] !== MessageType.Twrite) return null;
  if (first.readUInt32LE(19) !== size - TWRITE_HEADER) return null;
  const data = first.subarray(TWRITE_HEADER);
  return {
    type: MessageType.Twrite,
    tag: first.readUInt16LE(5),
    fid: first.readUInt32LE(7),
    offset: first.readBigUInt64LE(11),
    data,
    pieces: [data, ...pieces.slice(1)],
  };
}
