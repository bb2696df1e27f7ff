// A host process that swaps two names in one directory (renameat2 RENAME_EXCHANGE) as fast as it
// can, driven by lines on stdin: "swap DIR A B" starts (answered "swapping" after the first
// swap), "stop" ends it (answered "stopped" once no swap is in flight).
import { createInterface } from 'node:readline';
import { close, O, openRoot, renameat } from '../../src/backend/local/sys.js';

let current: Promise<void> | null = null;
let stopping = false;

async function swapUntilStopped(dir: string, a: Buffer, b: Buffer): Promise<void> {
  const [dirFd] = await openRoot(Buffer.from(dir));
  let first = true;
  while (!stopping) {
    await renameat(dirFd, a, dirFd, b, O.RENAME_EXCHANGE).catch(() => {});
    if (first) process.stdout.write('swapping\n');
    first = false;
  }
  await close(dirFd);
}

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, dir, a, b] = line.split(' ');
  if (cmd === 'swap') {
    stopping = false;
    current = swapUntilStopped(dir!, Buffer.from(a!), Buffer.from(b!));
  } else if (cmd === 'stop') {
    stopping = true;
    await current;
    process.stdout.write('stopped\n');
  }
}
