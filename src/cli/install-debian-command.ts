import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { installDebian } from '../guest/install-debian.js';
import { InstallProgress } from '../guest/install-progress.js';
import { integer } from './option-parsers.js';

function packageList(v: string, previous: string[]): string[] {
  const names = v.split(/[,\s]+/).filter(Boolean);
  for (const n of names) if (!/^[a-z0-9][a-z0-9+.-]+$/.test(n)) throw new InvalidArgumentError(`"${n}" is not a Debian package name`);
  return [...previous, ...names];
}

interface InstallFlags {
  suite: string;
  include: string[];
  variant: 'minbase';
  memory: number;
  cpus: number;
  debug?: boolean;
}

export function registerInstallDebianCommand(program: Command): void {
  program
    .command('install-debian')
    .description('install Debian into DIR as an ordinary user: packages from the host\'s apt, installed as root inside a guest whose root filesystem is DIR (mapped-xattr)')
    .argument('<dir>', 'an empty or new directory')
    .option('--suite <name>', 'Debian release', 'bookworm')
    .addOption(new Option('--include <packages>', 'more packages, comma-separated (repeatable)').default([], 'none').argParser(packageList))
    .addOption(new Option('--variant <variant>', 'package set: minbase is Priority: required plus apt').choices(['minbase']).default('minbase'))
    .addOption(new Option('--memory <MiB>', 'guest memory').default(1024).argParser(integer(256, 1 << 20)))
    .addOption(new Option('--cpus <n>', 'virtual CPUs').default(Math.min(2, availableParallelism())).argParser(integer(1, 256)))
    .option('-d, --debug', 'log the server\'s warnings and errors in detail')
    .action(async (dir: string, flags: InstallFlags) => {
      const log = pino({ level: flags.debug ? 'debug' : 'warn', base: null }, pino.destination(2));
      await installDebian({
        dir,
        suite: flags.suite,
        include: flags.include,
        variant: flags.variant,
        memoryMiB: flags.memory,
        cpus: flags.cpus,
        log,
        progress: new InstallProgress(process.stdout),
      });
      process.stdout.write(`virtfs: boot it with: virtfs boot ${dir}\n`);
    });
}
