/**
 * Values by host object identity (dev, ino), kept as bigints: a string key built from the two
 * numbers cost two BigInt-to-string conversions on every lookup, a visible share of a walk.
 */
export class ObjectMap<V> {
  private readonly devs = new Map<bigint, Map<bigint, V>>();

  get(dev: bigint, ino: bigint): V | undefined {
    return this.devs.get(dev)?.get(ino);
  }

  set(dev: bigint, ino: bigint, value: V): void {
    let inodes = this.devs.get(dev);
    if (!inodes) this.devs.set(dev, (inodes = new Map()));
    inodes.set(ino, value);
  }

  delete(dev: bigint, ino: bigint): void {
    const inodes = this.devs.get(dev);
    if (!inodes?.delete(ino)) return;
    if (inodes.size === 0) this.devs.delete(dev);
  }
}
