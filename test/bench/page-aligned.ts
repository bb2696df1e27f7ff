import { addressInPage } from '../../src/backend/local/sys.js';

/**
 * A buffer of `size` bytes starting at a page's start. The limit and the socket floor read whole
 * pages of the file into it: on AMD Zen a copy whose destination lies 1 to 31 bytes past its
 * source within a page runs about five times slower, and where malloc puts a 1 MiB buffer (16
 * bytes into a page) is such a place, so the bound they show depended on the allocator's mood.
 */
export function pageAligned(size: number): Buffer {
  const raw = Buffer.allocUnsafeSlow(size + 4095);
  const start = (4096 - addressInPage(raw)) % 4096;
  return raw.subarray(start, start + size);
}
