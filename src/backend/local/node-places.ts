import { LocalNode, NO_PLACE, type Place } from './local-node.js';
import { ObjectMap } from './object-map.js';

const ROOT: Place = { kind: 'root' };

/** A directory by identity: every node of it shares its entries. */
interface DirId {
  readonly dev: bigint;
  readonly ino: bigint;
}

/**
 * Live nodes by the directory entry they were last reached by. A rename or unlink through the
 * backend moves or retires them here, so a node can still be reopened by name after the guest
 * renamed it, and mapped-file keeps finding its metadata (one unlinked while held keeps what it
 * had). A host process renaming behind the server's back is not seen: reopening the node then
 * finds another object, or none (ESTALE), and mapped-file shows the host stat (or whatever
 * metadata the old name has by then). `changed` is told of every node whose place changes.
 */
export class NodePlaces {
  /** Directory (dev, ino) -> entry name (latin1, byte for byte) -> nodes. */
  private readonly entries = new ObjectMap<Map<string, Set<LocalNode>>>();

  constructor(private readonly changed: (node: LocalNode) => void) {}

  setRoot(node: LocalNode): void {
    this.forget(node);
    node.place = ROOT;
    this.changed(node);
  }

  /**
   * Record that `node` is entry `name` of `parent` (held as long as this lasts). The root keeps
   * its own place, and a directory never becomes its own ancestor (a host process can move
   * directories so that a stale entry and a fresh one would say so): it then stays where it was.
   */
  setEntry(node: LocalNode, parent: LocalNode, name: Uint8Array): void {
    const p = node.place;
    if (p.kind === 'root') return;
    if (p.kind === 'entry' && p.parent === parent && p.name.equals(name)) return;
    if (node.isDirectory && isAncestorOrSelf(node, parent)) return;
    parent.retain(); // before letting go of the old place, which may be the same directory's last hold
    this.forget(node);
    const copy = Buffer.from(name); // names from the wire are views of a frame
    node.place = { kind: 'entry', parent, name: copy };
    let names = this.entries.get(parent.dev, parent.ino);
    if (!names) this.entries.set(parent.dev, parent.ino, (names = new Map()));
    const key = nameKey(copy);
    let set = names.get(key);
    if (!set) names.set(key, (set = new Set()));
    set.add(node);
    this.changed(node);
  }

  /** The live nodes last reached as dir/name. */
  at(dir: DirId, name: Uint8Array): LocalNode[] {
    return [...(this.entries.get(dir.dev, dir.ino)?.get(nameKey(name)) ?? [])];
  }

  /** The live nodes last reached as dir/name, without a copy: not to be kept, nor changed while iterated. */
  nodesAt(dir: DirId, name: Uint8Array): ReadonlySet<LocalNode> | undefined {
    return this.entries.get(dir.dev, dir.ino)?.get(nameKey(name));
  }

  /** Entry oldDir/oldName is now newParent/newName: its nodes follow. */
  move(oldDir: DirId, oldName: Uint8Array, newParent: LocalNode, newName: Uint8Array): void {
    for (const node of this.at(oldDir, oldName)) this.setEntry(node, newParent, newName);
  }

  /**
   * Entry dir/name is gone: its nodes are nameless now, or, with `meta` (mapped-file's
   * metaFound..metaRdev), keep that metadata in memory, shared as the object is.
   */
  retire(dir: DirId, name: Uint8Array, meta: BigUint64Array | null): void {
    for (const node of this.at(dir, name)) {
      this.forget(node);
      if (meta) node.place = { kind: 'kept', meta };
      this.changed(node);
    }
  }

  /** Drop the node from the index (it is being freed, or about to be placed elsewhere). */
  forget(node: LocalNode): void {
    const p = node.place;
    node.place = NO_PLACE;
    if (p.kind !== 'entry') return;
    const names = this.entries.get(p.parent.dev, p.parent.ino);
    const key = nameKey(p.name);
    const set = names?.get(key);
    set?.delete(node);
    if (set?.size === 0) {
      names!.delete(key);
      if (names!.size === 0) this.entries.delete(p.parent.dev, p.parent.ino);
    }
    p.parent.release();
  }
}

function isAncestorOrSelf(node: LocalNode, of: LocalNode): boolean {
  for (let p: LocalNode = of; ; ) {
    if (p === node) return true;
    if (p.place.kind !== 'entry') return false;
    p = p.place.parent;
  }
}

function nameKey(name: Uint8Array): string {
  return Buffer.from(name.buffer, name.byteOffset, name.length).toString('latin1');
}
