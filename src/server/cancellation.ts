/**
 * A request's abort signal, made only when something asks for it: nearly every request finishes
 * without anyone listening (only blocking locks do), and an AbortController per request was a
 * measurable share of a small request's cost.
 */
export class Cancellation {
  private controller: AbortController | null = null;
  private cancelled = false;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort();
    }
    return this.controller.signal;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.controller?.abort();
  }
}
