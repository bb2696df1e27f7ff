import type { ListenAddress } from '../transport/listen-address.js';
import { isLoopback } from '../transport/listen-address.js';

/**
 * The mount command a guest runs. A QEMU guest on user networking (-nic user) reaches the host's
 * loopback at 10.0.2.2; any other machine uses the address the server listens on.
 */
export function mountLines(a: ListenAddress, msize: number): string[] {
  const opts = (transport: string) => `-o ${transport},version=9p2000.L,msize=${msize}`;
  if (a.kind === 'unix') return [`mount -t 9p ${opts('trans=unix')} ${a.path} /mnt`];
  if (a.kind === 'tcp') {
    const host = isLoopback(a.host) ? '10.0.2.2' : a.host === '0.0.0.0' || a.host === '::' ? 'HOST-ADDRESS' : a.host;
    return [`mount -t 9p ${opts(`trans=tcp,port=${a.port}`)} ${host} /mnt`];
  }
  return [];
}
