import { errnoName } from './errno.js';
import { defOf } from './messages.js';

const MAX_BYTES_SHOWN = 32;

function show(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return v.length > MAX_BYTES_SHOWN ? `<${v.length} bytes>` : JSON.stringify(v.toString('latin1'));
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (v && typeof v === 'object' && 'path' in v && 'type' in v) {
    const q = v as { type: number; version: number; path: bigint };
    return `(${q.path.toString(16)} ${q.version} ${q.type.toString(16)})`;
  }
  return String(v);
}

/** A one-line, diod-style rendering of a message for --debug traces. */
export function describe(m: { type: number; tag: number }): string {
  const d = defOf(m.type);
  if (!d) return `type ${m.type} tag ${m.tag}`;
  const rec = m as unknown as Record<string, unknown>;
  const parts = [d.name, `tag ${m.tag}`];
  for (const [name] of d.fields) {
    if (d.name === 'Rlerror' && name === 'ecode') parts.push(`ecode ${rec[name]} (${errnoName(rec[name] as number)})`);
    else if (d.name === 'Tgetattr' && name === 'requestMask') parts.push(`requestMask 0x${(rec[name] as bigint).toString(16)}`);
    else if ((name === 'flags' || name === 'mode' || name === 'valid') && typeof rec[name] === 'number')
      parts.push(`${name} 0${(rec[name] as number).toString(8)}`);
    else parts.push(`${name} ${show(rec[name])}`);
  }
  return parts.join(' ');
}
