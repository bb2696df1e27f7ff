import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { securityModelNames, type SecurityModelName } from '../backend/local/security-model.js';
import { MIN_MSIZE } from '../protocol/constants.js';
import { bootGuest } from '../guest/boot.js';
import { integer } from './option-parsers.js';

interface BootFlags {
  memory: number;
  cpus: number;
  kernel?: string;
  append?: string;
  msize: number;
  cache: string;
  securityModel: SecurityModelName;
  debug?: boolean;
}

export function registerBootCommand(program: Command): void {
  program
    .command('boot')
    .description('boot a guest whose root filesystem is DIR, served by virtfs from this process; with COMMAND, run it there and exit with its status')
    .argument('<dir>', 'the guest\'s root directory')
    .argument('[command...]', 'run this (after --) chrooted in DIR instead of booting its /sbin/init')
    .passThroughOptions()
    .addOption(new Option('--memory <MiB>', 'guest memory').default(1024).argParser(integer(128, 1 << 20)))
    .addOption(new Option('--cpus <n>', 'virtual CPUs').default(Math.min(2, availableParallelism())).argParser(integer(1, 256)))
    .option('--kernel <vmlinuz>', 'boot this kernel (virtio-net and 9p built in) instead of Debian\'s, which is fetched with apt and cached')
    .option('--append <args>', 'more kernel command line, e.g. systemd.unit=rescue.target')
    .addOption(new Option('--msize <bytes>', 'largest 9P message').default(1 << 20).argParser(integer(MIN_MSIZE, 1 << 20)))
    .addOption(new Option('--cache <mode>', 'the 9p client\'s cache mode for the root').choices(['none', 'loose', 'fscache', 'mmap']).default('mmap'))
    .addOption(
      new Option('--security-model <model>', 'how the guest\'s owners, modes and device nodes are kept on the host')
        .choices(securityModelNames)
        .default('mapped-xattr' as SecurityModelName),
    )
    .option('-d, --debug', 'log the server\'s warnings and errors in detail')
    .action(async (dir: string, operands: string[], flags: BootFlags) => {
      // With passThroughOptions commander keeps the `--` that ends virtfs's own options.
      const command = operands[0] === '--' ? operands.slice(1) : operands;
      const log = pino({ level: flags.debug ? 'debug' : 'warn', base: null }, pino.destination(2));
      const result = await bootGuest({
        root: dir,
        command: command.length ? command : undefined,
        memoryMiB: flags.memory,
        cpus: flags.cpus,
        kernel: flags.kernel,
        append: flags.append,
        msize: flags.msize,
        cache: flags.cache,
        security: flags.securityModel,
        console: 'terminal',
        log,
      });
      if (result.problem) process.stderr.write(`virtfs: ${result.problem}\n`);
      process.exitCode = result.status;
    });
}
