import { readFileSync } from 'node:fs';

/** The package version, read from package.json next to the build. */
export function version(): string {
  const pkg = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}
