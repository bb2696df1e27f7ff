import type { Credentials } from '../backend.js';
import type { Ownership, SecurityModel } from './security-model.js';
import { fchmod, fchown, StatIndex, type RawStat } from './sys.js';

/**
 * Host metadata is the guest's metadata. New objects belong to the attaching user when the
 * server can make them so (it runs as root); otherwise they belong to the server's user, as any
 * file an unprivileged process creates does.
 */
export class PassthroughModel implements SecurityModel {
  readonly name = 'passthrough';

  constructor(private readonly canChown: boolean) {}

  async ownNewObject(fd: number, cred: Credentials): Promise<void> {
    if (this.canChown) await fchown(fd, cred.uid, cred.gid);
  }

  chmod(fd: number, mode: number): Promise<void> {
    return fchmod(fd, mode & 0o7777);
  }

  chown(fd: number, uid: number, gid: number): Promise<void> {
    return fchown(fd, uid, gid);
  }

  ownership(stat: RawStat): Ownership {
    return {
      mode: Number(stat[StatIndex.mode]),
      uid: Number(stat[StatIndex.uid]),
      gid: Number(stat[StatIndex.gid]),
      rdev: stat[StatIndex.rdev]!,
    };
  }

  checkXattrName(): void {}

  filterXattrList(list: Buffer): Buffer {
    return list;
  }
}
