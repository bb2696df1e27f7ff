import { Errno, P9Error } from '../protocol/errno.js';

/**
 * Bytes kept in server memory on a client's say-so (xattr values between Txattrwalk/Txattrcreate
 * and Tclunk). Without it, a client holding many such fids could make the server allocate without
 * bound. A connection's budget draws on the server's too, so many connections cannot add up.
 */
export class ByteBudget {
  private used = 0;

  constructor(
    readonly limit: number,
    /** Who holds it, in the ENOSPC message: "connection", "server". */
    private readonly holder: string,
    private readonly whole: ByteBudget | null = null,
  ) {}

  reserve(n: number): void {
    if (this.used + n > this.limit) {
      throw new P9Error(Errno.ENOSPC, `the ${this.holder} holds ${this.used} bytes of xattr values; the limit is ${this.limit}`);
    }
    this.whole?.reserve(n);
    this.used += n;
  }

  release(n: number): void {
    this.used -= n;
    this.whole?.release(n);
  }
}
