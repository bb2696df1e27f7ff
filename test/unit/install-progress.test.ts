import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InstallProgress } from '../../src/guest/install-progress.js';

/** A stand-in for stdout that records what was written (not a terminal: one line per phase). */
function sink(): { stream: NodeJS.WriteStream; text: () => string } {
  let written = '';
  const stream = { isTTY: false, write: (s: string) => ((written += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => written };
}

const feed = (p: InstallProgress, lines: string[]) => p.guestOutput(Buffer.from(`${lines.join('\n')}\n`));

test('debootstrap --debian-installer phases become one line each, with their arguments filled in', () => {
  const out = sink();
  const p = new InstallProgress(out.stream);
  feed(p, ['I: UNPACKREQ', 'IF: Unpacking required packages...', 'P: 3 88 UNPACKREQ', 'PA: libc6', 'PF: Unpacking %s', 'I: CONFIGURING', 'IA: passwd', 'IF: Configuring %s...', 'I: CONFBASE', 'IF: Configuring the base system...']);
  const lines = out.text().trim().split('\n');
  assert.equal(lines.length, 2, out.text());
  assert.match(lines[0]!, /guest: Unpacking required packages$/);
  assert.match(lines[1]!, /guest: Configuring the base system$/);
});

test('a line split across console chunks is read whole, and the tail keeps the last lines', () => {
  const out = sink();
  const p = new InstallProgress(out.stream);
  p.guestOutput(Buffer.from('I: UNPACKBASE\nIF: Unpacking the ba'));
  p.guestOutput(Buffer.from('se system...\ndpkg: error: something went wrong\n'));
  assert.match(out.text(), /guest: Unpacking the base system\n/);
  assert.match(p.tail(), /dpkg: error: something went wrong$/);
});
