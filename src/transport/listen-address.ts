/** Where a server listens: `tcp:HOST:PORT`, `unix:PATH` or `stdio`. */
export type ListenAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'stdio' };

export const DEFAULT_LISTEN = 'tcp:127.0.0.1:5640';

export function parseListenAddress(s: string): ListenAddress {
  if (s === 'stdio') return { kind: 'stdio' };
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path) throw new Error(`"${s}": unix: needs a socket path`);
    return { kind: 'unix', path };
  }
  if (s.startsWith('tcp:')) {
    const rest = s.slice(4);
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(rest);
    if (!m) throw new Error(`"${s}": expected tcp:HOST:PORT (IPv6 as tcp:[ADDR]:PORT)`);
    const port = Number(m[3]);
    if (port > 65535) throw new Error(`"${s}": port ${port} is out of range`);
    return { kind: 'tcp', host: m[1] ?? m[2]!, port };
  }
  throw new Error(`"${s}": expected tcp:HOST:PORT, unix:PATH or stdio`);
}

export function formatListenAddress(a: ListenAddress): string {
  if (a.kind === 'tcp') return `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  if (a.kind === 'unix') return `unix:${a.path}`;
  return 'stdio';
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
