/** One GUEST:HOST:COUNT range of an id map, as --uid-map / --gid-map take it. */
export interface IdRange {
  guest: number;
  host: number;
  count: number;
}

/**
 * Who may attach and what ids they act with on the host, as data (in the spirit of NFS exports
 * and diod): squash, anonymous ids, uid/gid maps and an allow list.
 */
export interface IdentityPolicy {
  /** root: the guest's uid 0 acts as the anonymous user; all: every guest user does. */
  squash: 'none' | 'root' | 'all';
  anonUid: number;
  anonGid: number;
  /** Empty: guest ids are host ids. Otherwise only mapped ids exist; the rest act as, and show as, anonymous. */
  uidMap: readonly IdRange[];
  gidMap: readonly IdRange[];
  /** Guest uids that may attach (EPERM for others); null: everyone. */
  allowUsers: ReadonlySet<number> | null;
}

export const NOBODY = 65534;

export const openIdentityPolicy: IdentityPolicy = {
  squash: 'none',
  anonUid: NOBODY,
  anonGid: NOBODY,
  uidMap: [],
  gidMap: [],
  allowUsers: null,
};

/** Parse GUEST:HOST:COUNT; ranges must lie within 32 bits. */
export function parseIdRange(v: string): IdRange {
  const m = /^(\d+):(\d+):(\d+)$/.exec(v);
  if (!m) throw new Error(`"${v}" is not GUEST:HOST:COUNT`);
  const [guest, host, count] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (count < 1 || guest + count > 2 ** 32 - 1 || host + count > 2 ** 32 - 1) throw new Error(`"${v}" is out of range`);
  return { guest, host, count };
}

/** Ranges must not overlap on either side, or an id would map two ways. */
export function checkIdRanges(ranges: readonly IdRange[], what: string): void {
  for (const side of ['guest', 'host'] as const) {
    const sorted = [...ranges].sort((a, b) => a[side] - b[side]);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      if (sorted[i]![side] < prev[side] + prev.count) throw new Error(`${what} ranges overlap on the ${side} side`);
    }
  }
}

/** The host id of a guest id, or null if the map has none (an empty map maps every id to itself). */
export function mapIn(map: readonly IdRange[], id: number): number | null {
  if (map.length === 0) return id;
  for (const r of map) if (id >= r.guest && id < r.guest + r.count) return r.host + (id - r.guest);
  return null;
}

/** The guest id of a host id, or null if the map has none. */
export function mapOut(map: readonly IdRange[], id: number): number | null {
  if (map.length === 0) return id;
  for (const r of map) if (id >= r.host && id < r.host + r.count) return r.guest + (id - r.host);
  return null;
}
