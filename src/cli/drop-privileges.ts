import { readFileSync } from 'node:fs';

export interface RunAs {
  uid: number;
  gid: number;
  /** For initgroups: the user's name, when it has one. */
  name: string | null;
}

/** USER[:GROUP], each a name or a number; a user's primary group is the default. */
export function parseUserArg(v: string, passwd = '/etc/passwd', group = '/etc/group'): RunAs {
  const [user, grp] = v.split(':', 2) as [string, string | undefined];
  const users = table(passwd);
  const byName = users.find((f) => f[0] === user);
  const entry = byName ?? (/^\d+$/.test(user) ? users.find((f) => f[2] === user) : undefined);
  let uid: number;
  if (entry) uid = Number(entry[2]);
  else if (/^\d+$/.test(user)) uid = Number(user);
  else throw new Error(`no user named "${user}"`);
  let gid: number;
  if (grp === undefined || grp === '') {
    if (!entry) throw new Error(`uid ${uid} has no passwd entry: give a group as ${user}:GROUP`);
    gid = Number(entry[3]);
  } else if (/^\d+$/.test(grp)) {
    gid = Number(grp);
  } else {
    const g = table(group).find((f) => f[0] === grp);
    if (!g) throw new Error(`no group named "${grp}"`);
    gid = Number(g[2]);
  }
  return { uid, gid, name: entry ? entry[0]! : null };
}

function table(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/**
 * Become an ordinary user once the export is open and the socket bound, as a daemon started by
 * root does. Groups first, uid last (after it nothing else may change); then check that root
 * cannot be regained, so a failure is an error rather than a server still running as root.
 */
export function dropPrivileges(to: RunAs): void {
  if (process.getuid?.() !== 0) throw new Error('--user needs the server to be started as root');
  const p = process as unknown as Required<Pick<NodeJS.Process, 'setgroups' | 'setgid' | 'setuid'>> & { initgroups(user: string, gid: number): void };
  if (to.name !== null) p.initgroups(to.name, to.gid);
  else p.setgroups([to.gid]);
  p.setgid(to.gid);
  p.setuid(to.uid);
  if (to.uid !== 0) {
    let regained = false;
    try {
      p.setuid(0);
      regained = true;
    } catch {
      // expected
    }
    if (regained) throw new Error('could not drop root privileges');
  }
}
