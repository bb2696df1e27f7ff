// The virtfs command line; main.ts runs it once the thread pool is the size it should be.
import { Command } from 'commander';
import { registerBootCommand } from './boot-command.js';
import { registerClientCommands } from './client-commands.js';
import { registerInstallDebianCommand } from './install-debian-command.js';
import { registerServeCommand } from './serve-command.js';
import { version } from './version.js';

const program = new Command()
  .name('virtfs')
  .description('VirtFS host server: export a directory to Linux guests over 9P2000.L')
  .version(version())
  // `virtfs boot DIR -- COMMAND --flag`: what follows the command's operands is the command's own.
  .enablePositionalOptions()
  // Commander's errors become one line in the same form as ours: "virtfs: what went wrong (hint)".
  .configureOutput({ outputError: (s, write) => write(`virtfs: ${s.trim().replace(/^error: /, '')} (see --help)\n`) });

registerServeCommand(program);
registerClientCommands(program);
registerBootCommand(program);
registerInstallDebianCommand(program);

program.parseAsync(process.argv).catch((err: Error & { code?: string }) => {
  process.stderr.write(`virtfs: ${err.message}\n`);
  process.exit(1);
});
