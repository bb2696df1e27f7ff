import { Errno, P9Error } from '../protocol/errno.js';

/**
 * Blocking lock requests asleep in the server, counted against a cap. Each holds a request slot
 * and a little memory for as long as another holds the lock, so beyond the cap a new one is
 * refused with ENOLCK (what fcntl(F_SETLKW) answers when the kernel's lock table is full).
 */
export class LockWaiterCount {
  private waiting = 0;

  constructor(
    readonly limit: number,
    /** Whose waiters these are, for the error message: "this connection", "the server". */
    private readonly scope: string,
  ) {}

  enter(): void {
    if (this.waiting >= this.limit) throw new P9Error(Errno.ENOLCK, `${this.scope} already has ${this.limit} blocking lock requests waiting`);
    this.waiting++;
  }

  leave(): void {
    this.waiting--;
  }
}
