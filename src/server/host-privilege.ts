import { Errno, P9Error } from '../protocol/errno.js';

/**
 * What a guest could make on the host that gives privilege there, in the models where the host
 * kernel acts on what the guest sets (passthrough, none): device nodes reach hardware, setuid and
 * setgid files run as their owner, security.* and trusted.* attributes are capabilities, labels
 * and overlayfs state. 9P authenticates nobody, so whoever can connect could make them as any
 * user; each is refused unless the export allows it. The mapped models store all of them inert.
 */
export type HostPrivilege = 'devices' | 'setid' | 'xattrs';

export const HOST_PRIVILEGES: readonly HostPrivilege[] = ['devices', 'setid', 'xattrs'];

/** `all`, or a comma-separated list of privileges. */
export function parseHostPrivileges(list: string): HostPrivilege[] {
  if (list === 'all') return [...HOST_PRIVILEGES];
  const items = list.split(',').map((s) => s.trim());
  for (const i of items) {
    if (!(HOST_PRIVILEGES as readonly string[]).includes(i)) throw new Error(`'${i}' is not one of ${HOST_PRIVILEGES.join(', ')} or all`);
  }
  return items as HostPrivilege[];
}

/** Which privileges the export allows, and whether the host would act on them at all. */
export interface HostPrivilegeGate {
  readonly allowed: ReadonlySet<HostPrivilege>;
  /** False for the mapped models, where nothing the guest sets is special on the host. */
  readonly actsOnHost: boolean;
  /** Told the first time each privilege is refused, so the administrator learns which flag a guest needed. */
  readonly onRefused?: (p: HostPrivilege) => void;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

const flags: Record<HostPrivilege, string> = {
  devices: 'device nodes need --allow-privileged devices',
  setid: 'setuid and setgid files need --allow-privileged setid',
  xattrs: 'security.* and trusted.* attributes need --allow-privileged xattrs',
};

function refuse(gate: HostPrivilegeGate, p: HostPrivilege): never {
  gate.onRefused?.(p);
  throw new P9Error(Errno.EPERM, flags[p]);
}

function gated(gate: HostPrivilegeGate, p: HostPrivilege): boolean {
  return gate.actsOnHost && !gate.allowed.has(p);
}

/**
 * Permission bits given to a new or existing object. A setgid directory only passes its group on
 * and a setuid one means nothing to Linux: both stay allowed.
 */
export function checkHostMode(gate: HostPrivilegeGate, mode: number, isDirectory: boolean): void {
  if (!isDirectory && mode & (S_ISUID | S_ISGID) && gated(gate, 'setid')) refuse(gate, 'setid');
}

/** A Tmknod's type and permission bits. */
export function checkHostMknod(gate: HostPrivilegeGate, mode: number): void {
  const type = mode & S_IFMT;
  if ((type === S_IFCHR || type === S_IFBLK) && gated(gate, 'devices')) refuse(gate, 'devices');
  checkHostMode(gate, mode, type === S_IFDIR);
}

/** An attribute set or removed. */
export function checkHostXattr(gate: HostPrivilegeGate, name: Buffer): void {
  const n = name.toString('latin1');
  if ((n.startsWith('security.') || n.startsWith('trusted.')) && gated(gate, 'xattrs')) refuse(gate, 'xattrs');
}
