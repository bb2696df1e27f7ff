import { messageName } from '../protocol/messages.js';

/** Per-operation counters, kept from day one so metrics and `top` only have to read them. */
export class ServerStats {
  readonly requests = new Map<string, number>();
  readonly errors = new Map<string, number>();
  connections = 0;
  connectionsTotal = 0;
  /** Requests started and not yet answered, all connections together. */
  requestsInProgress = 0;

  count(type: number, failed: boolean): void {
    const name = messageName(type);
    this.requests.set(name, (this.requests.get(name) ?? 0) + 1);
    if (failed) this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
  }
}
