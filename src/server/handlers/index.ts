import { Errno, P9Error } from '../../protocol/errno.js';
import { MessageType, type TMessage } from '../../protocol/messages.js';
import type { Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';
import { getattr, setattr, statfs } from './attributes.js';
import { link, mkdir, mknod, readdir, readlink, remove, rename, renameat, symlink, unlinkat } from './directory.js';
import { fsync, read, write } from './io.js';
import { getlock, lock } from './lock.js';
import { lcreate, lopen } from './open-create.js';
import { attach, auth, clunk } from './session-handlers.js';
import { walk } from './walk.js';
import { xattrcreate, xattrwalk } from './xattr.js';

/** Answers at once where it need not wait (see Session.run), else with a promise. */
type Handler = (ctx: RequestContext, m: any) => Reply | Promise<Reply>;

/** The 9P2000.L dialect: one handler per request type (Tversion and Tflush belong to the session). */
const dotL = new Map<number, Handler>([
  [MessageType.Tattach, attach],
  [MessageType.Tauth, auth],
  [MessageType.Tclunk, clunk],
  [MessageType.Twalk, walk],
  [MessageType.Tlopen, lopen],
  [MessageType.Tlcreate, lcreate],
  [MessageType.Tread, read],
  [MessageType.Twrite, write],
  [MessageType.Tfsync, fsync],
  [MessageType.Treaddir, readdir],
  [MessageType.Tmkdir, mkdir],
  [MessageType.Tmknod, mknod],
  [MessageType.Tsymlink, symlink],
  [MessageType.Tlink, link],
  [MessageType.Treadlink, readlink],
  [MessageType.Trenameat, renameat],
  [MessageType.Trename, rename],
  [MessageType.Tunlinkat, unlinkat],
  [MessageType.Tremove, remove],
  [MessageType.Tgetattr, getattr],
  [MessageType.Tsetattr, setattr],
  [MessageType.Tstatfs, statfs],
  [MessageType.Txattrwalk, xattrwalk],
  [MessageType.Txattrcreate, xattrcreate],
  [MessageType.Tlock, lock],
  [MessageType.Tgetlock, getlock],
]);

const unsupported: Handler = async () => {
  throw new P9Error(Errno.EOPNOTSUPP);
};

export function handlerFor(type: TMessage['type']): Handler {
  return dotL.get(type) ?? unsupported;
}
