import { LinuxOpenFlag as L } from './constants.js';

/** Questions about Tlopen/Tlcreate flags, in the wire's Linux numbering. */

export function accessMode(wire: number): number {
  return wire & L.ACCMODE;
}

export function isWriteAccess(wire: number): boolean {
  const acc = accessMode(wire);
  return acc === L.WRONLY || acc === L.RDWR;
}

/** Does the request ask to modify the file (readonly exports refuse these)? */
export function wantsModification(wire: number): boolean {
  return isWriteAccess(wire) || (wire & (L.TRUNC | L.APPEND)) !== 0;
}
