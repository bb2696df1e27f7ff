import { LinuxOpenFlag as L } from '../../protocol/constants.js';
import { accessMode } from '../../protocol/open-flags.js';
import { O } from './sys.js';

// Wire flags use Linux x86 numbering; hosts such as arm64 number O_DIRECTORY, O_NOFOLLOW, O_DIRECT
// and O_LARGEFILE differently, so every flag is translated by name, never passed through.
const carried: readonly (readonly [number, number])[] = [
  [L.TRUNC, O.O_TRUNC],
  [L.APPEND, O.O_APPEND],
  [L.DSYNC, O.O_DSYNC],
  [L.NOATIME, O.O_NOATIME],
  [L.SYNC, O.O_SYNC],
];
// Deliberately dropped: CREAT/EXCL (creation is Tlcreate's job), NOCTTY, NONBLOCK and FASYNC
// (meaningless for the regular files and directories we open), DIRECT (our buffers are not
// aligned), LARGEFILE (always on), DIRECTORY/NOFOLLOW (we check the type ourselves), CLOEXEC
// (always on).

/** Host open(2) flags for a Tlopen/Tlcreate request. */
export function hostOpenFlags(wire: number): number {
  const acc = accessMode(wire);
  let flags = acc === L.WRONLY ? O.O_WRONLY : acc === L.RDWR ? O.O_RDWR : O.O_RDONLY;
  for (const [w, h] of carried) if (wire & w) flags |= h;
  return flags;
}

