/**
 * A resource shared by several holders (fids, in-flight requests) and freed when the last one
 * lets go. This is what makes Tclunk during a Tread safe: the descriptor closes only after the
 * read that pinned it has finished, so a recycled fd number can never be read by mistake.
 */
export abstract class Refcounted {
  private refs = 1;

  retain(): this {
    if (this.refs <= 0) throw new Error(`${this.constructor.name} retained after release`);
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) this.free();
  }

  get released(): boolean {
    return this.refs <= 0;
  }

  protected abstract free(): void;
}
