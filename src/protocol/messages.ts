import { MAX_WALK_ELEMENTS } from './constants.js';
import { array16, bytes16, data32, qid, str, u16, u32, u64, u8, type Field } from './fields.js';

// Every 9P2000.L message, declared once: the field list is the wire order, and the codec and the
// TypeScript types both follow from it. Adding a message is adding a line here.

type FieldList = readonly (readonly [string, Field<any>])[];
type ValueOf<F> = F extends Field<infer T> ? T : never;
type FieldsOf<L extends FieldList> = { [E in L[number] as E[0]]: ValueOf<E[1]> };

export interface MessageDef<N extends string = string, K extends number = number, L extends FieldList = FieldList> {
  readonly name: N;
  readonly type: K;
  readonly fields: L;
}

export type MessageOf<D> = D extends MessageDef<infer N, infer K, infer L> ? { type: K; tag: number } & FieldsOf<L> : never;

function def<N extends string, K extends number, L extends FieldList>(name: N, type: K, fields: L): MessageDef<N, K, L> {
  return { name, type, fields };
}

const wnames = array16(bytes16, MAX_WALK_ELEMENTS);
const wqids = array16(qid, MAX_WALK_ELEMENTS);

export const defs = {
  Tlerror: def('Tlerror', 6, [] as const),
  Rlerror: def('Rlerror', 7, [['ecode', u32]] as const),
  Tstatfs: def('Tstatfs', 8, [['fid', u32]] as const),
  Rstatfs: def('Rstatfs', 9, [
    ['fsType', u32], ['bsize', u32], ['blocks', u64], ['bfree', u64], ['bavail', u64],
    ['files', u64], ['ffree', u64], ['fsid', u64], ['namelen', u32],
  ] as const),
  Tlopen: def('Tlopen', 12, [['fid', u32], ['flags', u32]] as const),
  Rlopen: def('Rlopen', 13, [['qid', qid], ['iounit', u32]] as const),
  Tlcreate: def('Tlcreate', 14, [['fid', u32], ['name', bytes16], ['flags', u32], ['mode', u32], ['gid', u32]] as const),
  Rlcreate: def('Rlcreate', 15, [['qid', qid], ['iounit', u32]] as const),
  Tsymlink: def('Tsymlink', 16, [['fid', u32], ['name', bytes16], ['target', bytes16], ['gid', u32]] as const),
  Rsymlink: def('Rsymlink', 17, [['qid', qid]] as const),
  Tmknod: def('Tmknod', 18, [['dfid', u32], ['name', bytes16], ['mode', u32], ['major', u32], ['minor', u32], ['gid', u32]] as const),
  Rmknod: def('Rmknod', 19, [['qid', qid]] as const),
  Trename: def('Trename', 20, [['fid', u32], ['dfid', u32], ['name', bytes16]] as const),
  Rrename: def('Rrename', 21, [] as const),
  Treadlink: def('Treadlink', 22, [['fid', u32]] as const),
  Rreadlink: def('Rreadlink', 23, [['target', bytes16]] as const),
  Tgetattr: def('Tgetattr', 24, [['fid', u32], ['requestMask', u64]] as const),
  Rgetattr: def('Rgetattr', 25, [
    ['valid', u64], ['qid', qid], ['mode', u32], ['uid', u32], ['gid', u32], ['nlink', u64],
    ['rdev', u64], ['size', u64], ['blksize', u64], ['blocks', u64],
    ['atimeSec', u64], ['atimeNsec', u64], ['mtimeSec', u64], ['mtimeNsec', u64],
    ['ctimeSec', u64], ['ctimeNsec', u64], ['btimeSec', u64], ['btimeNsec', u64],
    ['gen', u64], ['dataVersion', u64],
  ] as const),
  Tsetattr: def('Tsetattr', 26, [
    ['fid', u32], ['valid', u32], ['mode', u32], ['uid', u32], ['gid', u32], ['size', u64],
    ['atimeSec', u64], ['atimeNsec', u64], ['mtimeSec', u64], ['mtimeNsec', u64],
  ] as const),
  Rsetattr: def('Rsetattr', 27, [] as const),
  Txattrwalk: def('Txattrwalk', 30, [['fid', u32], ['newfid', u32], ['name', bytes16]] as const),
  Rxattrwalk: def('Rxattrwalk', 31, [['size', u64]] as const),
  Txattrcreate: def('Txattrcreate', 32, [['fid', u32], ['name', bytes16], ['attrSize', u64], ['flags', u32]] as const),
  Rxattrcreate: def('Rxattrcreate', 33, [] as const),
  Treaddir: def('Treaddir', 40, [['fid', u32], ['offset', u64], ['count', u32]] as const),
  Rreaddir: def('Rreaddir', 41, [['data', data32]] as const),
  Tfsync: def('Tfsync', 50, [['fid', u32], ['datasync', u32]] as const),
  Rfsync: def('Rfsync', 51, [] as const),
  Tlock: def('Tlock', 52, [
    ['fid', u32], ['lockType', u8], ['flags', u32], ['start', u64], ['length', u64], ['procId', u32], ['clientId', str],
  ] as const),
  Rlock: def('Rlock', 53, [['status', u8]] as const),
  Tgetlock: def('Tgetlock', 54, [
    ['fid', u32], ['lockType', u8], ['start', u64], ['length', u64], ['procId', u32], ['clientId', str],
  ] as const),
  Rgetlock: def('Rgetlock', 55, [
    ['lockType', u8], ['start', u64], ['length', u64], ['procId', u32], ['clientId', str],
  ] as const),
  Tlink: def('Tlink', 70, [['dfid', u32], ['fid', u32], ['name', bytes16]] as const),
  Rlink: def('Rlink', 71, [] as const),
  Tmkdir: def('Tmkdir', 72, [['dfid', u32], ['name', bytes16], ['mode', u32], ['gid', u32]] as const),
  Rmkdir: def('Rmkdir', 73, [['qid', qid]] as const),
  Trenameat: def('Trenameat', 74, [['oldDirFid', u32], ['oldName', bytes16], ['newDirFid', u32], ['newName', bytes16]] as const),
  Rrenameat: def('Rrenameat', 75, [] as const),
  Tunlinkat: def('Tunlinkat', 76, [['dfid', u32], ['name', bytes16], ['flags', u32]] as const),
  Runlinkat: def('Runlinkat', 77, [] as const),
  Tversion: def('Tversion', 100, [['msize', u32], ['version', str]] as const),
  Rversion: def('Rversion', 101, [['msize', u32], ['version', str]] as const),
  Tauth: def('Tauth', 102, [['afid', u32], ['uname', str], ['aname', str], ['nUname', u32]] as const),
  Rauth: def('Rauth', 103, [['aqid', qid]] as const),
  Tattach: def('Tattach', 104, [['fid', u32], ['afid', u32], ['uname', str], ['aname', str], ['nUname', u32]] as const),
  Rattach: def('Rattach', 105, [['qid', qid]] as const),
  Tflush: def('Tflush', 108, [['oldtag', u16]] as const),
  Rflush: def('Rflush', 109, [] as const),
  Twalk: def('Twalk', 110, [['fid', u32], ['newfid', u32], ['wnames', wnames]] as const),
  Rwalk: def('Rwalk', 111, [['qids', wqids]] as const),
  Tread: def('Tread', 116, [['fid', u32], ['offset', u64], ['count', u32]] as const),
  Rread: def('Rread', 117, [['data', data32]] as const),
  Twrite: def('Twrite', 118, [['fid', u32], ['offset', u64], ['data', data32]] as const),
  Rwrite: def('Rwrite', 119, [['count', u32]] as const),
  Tclunk: def('Tclunk', 120, [['fid', u32]] as const),
  Rclunk: def('Rclunk', 121, [] as const),
  Tremove: def('Tremove', 122, [['fid', u32]] as const),
  Rremove: def('Rremove', 123, [] as const),
} as const;

type Defs = typeof defs;
export type MessageName = keyof Defs;
export type Message<N extends MessageName = MessageName> = N extends MessageName ? MessageOf<Defs[N]> : never;
/** Requests: what a server decodes. */
export type TMessage = Message<Extract<MessageName, `T${string}`>>;
/** Replies: what a server encodes. */
export type RMessage = Message<Extract<MessageName, `R${string}`>>;

/** The numeric type of every message, by name: MessageType.Twalk === 110. */
export const MessageType = Object.fromEntries(Object.values(defs).map((d) => [d.name, d.type])) as {
  [N in MessageName]: Defs[N]['type'];
};

const byType = new Map<number, MessageDef>(Object.values(defs).map((d) => [d.type, d as MessageDef]));

export function defOf(type: number): MessageDef | undefined {
  return byType.get(type);
}

export function messageName(type: number): string {
  return byType.get(type)?.name ?? `type ${type}`;
}

/** Narrow a decoded message by its name: `isMessage(m, 'Twalk')`. */
export function isMessage<N extends MessageName>(m: { type: number }, name: N): m is Message<N> {
  return m.type === defs[name].type;
}
