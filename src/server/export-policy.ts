import { Errno, P9Error } from '../protocol/errno.js';
import { MessageType, type TMessage } from '../protocol/messages.js';
import { wantsModification } from '../protocol/open-flags.js';

/** How an export may be used, as data; checked for every request in one place. */
export interface ExportPolicy {
  readonly: boolean;
}

const modifying = new Set<number>([
  MessageType.Tlcreate,
  MessageType.Tsymlink,
  MessageType.Tmknod,
  MessageType.Trename,
  MessageType.Trenameat,
  MessageType.Tsetattr,
  MessageType.Txattrcreate,
  MessageType.Tlink,
  MessageType.Tmkdir,
  MessageType.Tunlinkat,
  MessageType.Tremove,
  MessageType.Twrite,
]);

export function checkPolicy(policy: ExportPolicy, m: TMessage): void {
  if (!policy.readonly) return;
  if (modifying.has(m.type)) throw new P9Error(Errno.EROFS);
  if (m.type === MessageType.Tlopen && wantsModification(m.flags)) throw new P9Error(Errno.EROFS);
}
