import { readFileSync } from 'node:fs';

const NOBODY = 65534;

/**
 * Resolves the uname of attaches that carry no numeric uid (n_uname = ~0) through the host's
 * /etc/passwd; unknown names become nobody. Read once: attaches are frequent, users rarely change.
 */
export function passwdLookup(file = '/etc/passwd'): (uname: string, unknown?: number) => number {
  const byName = new Map<string, number>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && /^\d+$/.test(f[2]!)) byName.set(f[0]!, Number(f[2]));
    }
  } catch {
    // No passwd file: every name is nobody.
  }
  return (uname, unknown = NOBODY) => byName.get(uname) ?? (/^\d+$/.test(uname) ? Number(uname) : unknown);
}
