import { LocalNode, NO_PLACE, type Place } from './local-node.js';

const ROOT: Place = { kind: 'root' };

/** A directory by identity: every node of it shares its entries. */
interface DirId {
  readonly dev: bigint;
  readonly ino: bigint;
}

/**
 * Live nodes by the directory entry their by-name metadata is found at (mapped-file). A rename or
 * unlink through the backend moves or retires them here, so a node keeps finding its metadata
 * after the guest renames it, and one unlinked while held keeps what it had. A host process
 * renaming behind the server's back is not seen: the node then shows its host stat (or whatever
 * metadata its old name has by then).
 */
export class NodePlaces {
  private readonly entries = new Map<string, Set<LocalNode>>();

  setRoot(node: LocalNode): void {
    this.clear(node);
    node.place = ROOT;
  }

  /** Make `node` find its metadata at entry `name` of `parent` (held as long as this lasts). */
  setEntry(node: LocalNode, parent: LocalNode, name: Uint8Array): void {
    this.clear(node);
    const copy = Buffer.from(name); // names from the wire are views of a frame
    node.place = { kind: 'entry', parent: parent.retain(), name: copy };
    const key = keyOf(parent, copy);
    let set = this.entries.get(key);
    if (!set) this.entries.set(key, (set = new Set()));
    set.add(node);
    node.onFree = (n) => this.clear(n);
  }

  /** The live nodes whose metadata is at dir/name. */
  at(dir: DirId, name: Uint8Array): LocalNode[] {
    return [...(this.entries.get(keyOf(dir, name)) ?? [])];
  }

  /** Entry oldDir/oldName is now newParent/newName: its nodes follow. */
  move(oldDir: DirId, oldName: Uint8Array, newParent: LocalNode, newName: Uint8Array): void {
    for (const node of this.at(oldDir, oldName)) this.setEntry(node, newParent, newName);
  }

  /** Entry dir/name is gone: its nodes keep `meta` (metaFound..metaRdev) in memory, shared as the object is. */
  retire(dir: DirId, name: Uint8Array, meta: BigUint64Array): void {
    for (const node of this.at(dir, name)) {
      this.clear(node);
      node.place = { kind: 'kept', meta };
    }
  }

  private clear(node: LocalNode): void {
    const p = node.place;
    node.place = NO_PLACE;
    if (p.kind !== 'entry') return;
    const key = keyOf(p.parent, p.name);
    const set = this.entries.get(key);
    set?.delete(node);
    if (set?.size === 0) this.entries.delete(key);
    p.parent.release();
  }
}

function keyOf(dir: DirId, name: Uint8Array): string {
  return `${dir.dev}:${dir.ino}/${Buffer.from(name.buffer, name.byteOffset, name.length).toString('latin1')}`;
}
