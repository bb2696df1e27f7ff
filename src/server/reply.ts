import { defs, type Message, type MessageName, type RMessage } from '../protocol/messages.js';

/** A handler's answer: a reply message, or a frame already encoded in place (Rread's fast path). */
export type Reply = RMessage | Buffer;

/** Build a reply; the session fills in the tag. */
export function reply<N extends Extract<MessageName, `R${string}`>>(name: N, fields: Omit<Message<N>, 'type' | 'tag'>): Message<N> {
  return { ...fields, type: defs[name].type, tag: 0 } as unknown as Message<N>;
}
