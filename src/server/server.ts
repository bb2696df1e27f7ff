import { Session, type SessionOutput } from './session.js';
import type { ServerContext } from './server-context.js';

/** A 9P2000.L server over one backend: hands out a Session per connection, whatever carries it. */
export class Server {
  private nextId = 1;
  private readonly sessions = new Set<Session>();

  constructor(readonly context: ServerContext) {}

  openSession(out: SessionOutput): Session {
    const s = new Session(this.context, out, this.nextId++);
    this.sessions.add(s);
    this.context.stats.connections++;
    this.context.stats.connectionsTotal++;
    return s;
  }

  /** The connection has ended: release everything it held, once its requests have finished. */
  async closeSession(s: Session): Promise<void> {
    if (!this.sessions.delete(s)) return;
    this.context.stats.connections--;
    s.close();
    await s.drained();
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    await Promise.all([...this.sessions].map((s) => this.closeSession(s)));
    await this.context.backend.close();
  }
}
