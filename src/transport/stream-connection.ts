import type { Readable, Writable } from 'node:stream';
import { FrameSplitter } from '../protocol/frame-splitter.js';
import type { Server } from '../server/server.js';
import type { Session } from '../server/session.js';

/**
 * Serves one 9P connection over a byte stream (a socket, or stdin/stdout). Replies produced in the
 * same tick are written together: the stream is corked on the first and uncorked on the next tick,
 * so a burst of small replies costs one write system call.
 */
export class StreamConnection {
  readonly session: Session;
  /** Resolves once the connection is over and everything it held has been released. */
  readonly closed: Promise<void>;
  private corked = false;
  private over = false;
  private resolveClosed!: () => void;

  constructor(
    private readonly server: Server,
    private readonly input: Readable,
    private readonly output: Writable,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.session = server.openSession({
      send: (frame) => this.send(frame),
      pause: () => this.input.pause(),
      resume: () => this.input.resume(),
      close: () => this.end(),
    });
    const splitter = new FrameSplitter(
      {
        frame: (f) => this.session.receive(f),
        oversized: (type, tag, size) => this.session.receiveOversized(type, tag, size),
        malformed: () => this.end(),
      },
      () => this.session.frameLimit,
    );
    input.on('data', (chunk: Buffer) => splitter.push(chunk));
    input.on('end', () => this.end());
    input.on('close', () => this.end());
    input.on('error', () => this.end());
    output.on('error', () => this.end());
    output.on('close', () => this.end());
  }

  private send(frame: Buffer): void {
    if (this.over) return;
    if (!this.corked) {
      this.corked = true;
      this.output.cork();
      process.nextTick(() => {
        this.corked = false;
        this.output.uncork();
      });
    }
    this.output.write(frame);
  }

  /** Stop serving: close both directions and release everything the session held. */
  end(): void {
    if (this.over) return;
    this.over = true;
    this.input.destroy();
    if ((this.output as unknown) !== this.input) this.output.end();
    void this.server.closeSession(this.session).then(this.resolveClosed);
  }
}
