import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServerUnderTest } from '../bench/servers.js';
import { StepSampler } from '../bench/guest/step-sampler.js';

// The in-guest bench's console reader (test/bench/guest/step-sampler.ts). This process stands in
// for the server and for qemu: only its /proc/PID/stat is read.
const self = { name: 'virtfs', pid: process.pid } as ServerUnderTest;

function burn(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('a step becomes a sample of the guest-measured seconds and the CPU used between its lines', () => {
  const s = new StepSampler({ virtfs: self });
  s.watchGuest(process.pid);
  s.feed('BENCH begin virtfs 1 tar-x\r\n');
  burn(60);
  s.feed('BENCH end virtfs 1 tar-x 0 2500000000\r\n');
  const [sample, ...more] = s.samples().get('virtfs tar-x') ?? [];
  assert.equal(more.length, 0);
  assert.equal(sample?.seconds, 2.5);
  // 60 ms of busy loop is at least a few 10 ms ticks of CPU, on the server and the guest alike.
  assert.ok(sample.serverCpu >= 0.02 && sample.guestCpu >= 0.02, JSON.stringify(sample));
});

test('lines split across console chunks and kernel noise between them are read', () => {
  const s = new StepSampler({ virtfs: self });
  for (const chunk of ['[  1.0] random: crng init\r\nBENCH beg', 'in virtfs 2 ls-lR\r\nBENCH end virtfs 2 ', 'ls-lR 0 1000000\r', '\n']) s.feed(chunk);
  assert.equal(s.samples().get('virtfs ls-lR')?.[0]?.seconds, 0.001);
});

test('a failed step, an end without a begin and a server not being measured give no sample', () => {
  const s = new StepSampler({ virtfs: self });
  s.feed('BENCH begin virtfs 1 cp-a\nBENCH end virtfs 1 cp-a 1 5000\n');
  s.feed('BENCH end virtfs 1 seq-read 0 5000\n');
  s.feed('BENCH begin diod 1 cp-a\nBENCH end diod 1 cp-a 0 5000\n');
  assert.equal(s.samples().size, 0);
});
