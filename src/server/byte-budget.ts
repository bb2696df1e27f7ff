import { Errno, P9Error } from '../protocol/errno.js';

/**
 * Bytes a connection may keep in server memory on the client's say-so (xattr values between
 * Txattrwalk/Txattrcreate and Tclunk). Without it, a client holding many such fids could make
 * the server allocate without bound.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  reserve(n: number): void {
    if (this.used + n > this.limit) {
      throw new P9Error(Errno.ENOSPC, `connection holds ${this.used} bytes of xattr values; the limit is ${this.limit}`);
    }
    this.used += n;
  }

  release(n: number): void {
    this.used -= n;
  }
}
