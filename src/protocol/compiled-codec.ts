import { HEADER_SIZE } from './constants.js';
import type { Field } from './fields.js';
import type { MessageDef } from './messages.js';
import { DecodeError, WireReader, WireWriter } from './wire.js';

/** One message's codec, made from its declaration: the same fields, in the same order. */
export interface MessageCodec {
  /** Bytes the message occupies, header included. */
  size(m: object): number;
  /** Encode into a buffer of exactly its size. */
  encode(m: object): Buffer;
  /** Decode a whole frame (size[4] included) of this type; throws DecodeError if malformed. */
  decode(frame: Buffer, tag: number): Record<string, unknown>;
}

/**
 * A loop over a message's field list reads and writes every message object by computed names,
 * which V8 can only do the slow way (megamorphic lookups; decoded objects grown one property at
 * a time). Writing the loop out once per message, with the names as literal properties, gives
 * each message code of its own that the engine keeps fast. The declaration stays the one source.
 */
export function compileCodec(d: MessageDef): MessageCodec {
  const names = d.fields.map(([name]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`field name ${JSON.stringify(name)} of ${d.name} is not an identifier`);
    return name;
  });
  const fields: Field<unknown>[] = d.fields.map(([, f]) => f);
  const size = `${HEADER_SIZE}${names.map((n, i) => ` + f[${i}].size(m.${n})`).join('')}`;
  const source = `
    const size = (m) => ${size};
    return {
      size,
      encode(m) {
        const n = ${size};
        const w = new WireWriter(Buffer.allocUnsafe(n));
        w.u32(n);
        w.u8(${d.type});
        w.u16(m.tag);
        ${names.map((n, i) => `f[${i}].write(w, m.${n});`).join('\n        ')}
        return w.buf;
      },
      decode(frame, tag) {
        const r = new WireReader(frame, ${HEADER_SIZE});
        const m = { type: ${d.type}, tag${names.map((n, i) => `, ${n}: f[${i}].read(r)`).join('')} };
        if (r.remaining !== 0) throw new DecodeError(\`${d.name} has \${r.remaining} trailing bytes\`);
        return m;
      },
    };`;
  return new Function('f', 'WireReader', 'WireWriter', 'DecodeError', 'Buffer', source)(fields, WireReader, WireWriter, DecodeError, Buffer) as MessageCodec;
}
