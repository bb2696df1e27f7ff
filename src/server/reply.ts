import { defs, type Message, type MessageName, type RMessage } from '../protocol/messages.js';

/** A handler's answer: a reply message, or a frame already encoded in place (Rread's fast path). */
export type Reply = RMessage | Buffer;

/**
 * Build a reply from a fields object the handler made for it, which becomes the message (the
 * session fills in the tag): copying it, as a spread did, cost more than encoding it.
 */
export function reply<N extends Extract<MessageName, `R${string}`>>(name: N, fields: Omit<Message<N>, 'type' | 'tag'>): Message<N> {
  const m = fields as unknown as { type: number; tag: number };
  m.type = defs[name].type;
  m.tag = 0;
  return m as unknown as Message<N>;
}
