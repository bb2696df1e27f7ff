#!/usr/bin/env node
// Disk work runs on libuv's thread pool; its default of 4 threads would let four slow
// operations stall every client. Must be set before the pool's first use.
process.env.UV_THREADPOOL_SIZE ??= '16';

import { Command } from 'commander';
import { registerClientCommands } from './client-commands.js';
import { registerServeCommand } from './serve-command.js';
import { version } from './version.js';

const program = new Command()
  .name('virtfs')
  .description('VirtFS host server: export a directory to Linux guests over 9P2000.L')
  .version(version())
  // Commander's errors become one line in the same form as ours: "virtfs: what went wrong (hint)".
  .configureOutput({ outputError: (s, write) => write(`virtfs: ${s.trim().replace(/^error: /, '')} (see --help)\n`) });

registerServeCommand(program);
registerClientCommands(program);

program.parseAsync(process.argv).catch((err: Error & { code?: string }) => {
  process.stderr.write(`virtfs: ${err.message}\n`);
  process.exit(1);
});
