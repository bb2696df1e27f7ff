import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Client } from '../client/client.js';
import { startServer } from '../index.js';
import { AptArchive, hostDebianMirror, type DebFile } from './apt-archive.js';
import { bootGuest } from './boot.js';
import { unpackedPackage } from './debian-package.js';
import { GuestTreeWriter } from './guest-tree-writer.js';
import type { InstallProgress } from './install-progress.js';

export interface InstallOptions {
  dir: string;
  suite: string;
  /** More packages, installed with their dependencies by debootstrap's second stage. */
  include: readonly string[];
  variant: 'minbase';
  memoryMiB: number;
  cpus: number;
  log: Logger;
  progress: InstallProgress;
}

const S_IFCHR = 0o020000;
/** debootstrap's setup_devices_simple: the nodes a chroot needs before /dev is mounted. */
const DEVICES: Array<[string, number, number]> = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0], ['console', 5, 1], ['ptmx', 5, 2],
];

/**
 * Install Debian into `dir` the way debootstrap --foreign and --second-stage do, with the first
 * stage done here through virtfs itself (so the tree is written as the guest's root, owners and
 * device nodes kept by the security model) and the second stage, dpkg's real installation,
 * run as root inside a guest booted with `dir` as its root filesystem.
 */
export async function installDebian(o: InstallOptions): Promise<void> {
  const dir = resolve(o.dir);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`${o.dir}: not a directory`);
    if (readdirSync(dir).length > 0) throw new Error(`${o.dir}: not empty (install-debian makes a new system in an empty or new directory)`);
  } else {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  }
  const p = o.progress;

  p.phase('Reading the package lists');
  const mirror = await hostDebianMirror();
  const archive = new AptArchive(o.suite, mirror);
  await archive.update();
  const merged = (await archive.has('usr-is-merged')) ? ['usr-is-merged'] : [];
  const requiredNames = [...(await archive.requiredPackages()), ...merged];
  p.phase('Downloading packages');
  const required = await archive.resolve(requiredNames);
  const all = await archive.resolveAndDownload([...requiredNames, 'apt', ...o.include]);
  const downloaded = new Set(all.map((d) => d.file));
  for (const d of required) if (!downloaded.has(d.file)) throw new Error(`apt chose ${d.file} for the required set but not for the whole install`);
  const requiredSet = new Set(required.map((d) => d.pkg));
  const base = all.filter((d) => !requiredSet.has(d.pkg));

  const work = mkdtempSync(join(tmpdir(), 'virtfs-install-'));
  const socket = join(work, '9p.sock');
  const server = await startServer({ root: dir, listen: `unix:${socket}`, security: { model: 'mapped-xattr' }, log: o.log });
  try {
    const client = await Client.connect(`unix:${socket}`);
    try {
      const root = await client.attach({ uname: 'root', nUname: 0 });
      const tree = new GuestTreeWriter(client, root, true);
      await firstStage(tree, o, archive, required, all, base, p);
      await tree.close();
    } finally {
      client.conn.close();
    }
  } finally {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }

  p.phase('Installing in the guest (debootstrap --second-stage)');
  const result = await bootGuest({
    root: dir,
    // --debian-installer: progress as "P: now end NAME" lines on fd 3, which goes to the console.
    command: ['sh', '-c', 'exec 3>&1; /debootstrap/debootstrap --second-stage --debian-installer && apt-get clean'],
    memoryMiB: o.memoryMiB,
    cpus: o.cpus,
    msize: 1 << 20,
    cache: 'loose',
    security: 'mapped-xattr',
    console: 'pipe',
    log: o.log,
    onConsole: (c) => p.guestOutput(c),
  });
  if (result.status !== 0) {
    throw new Error(`debootstrap's second stage failed in the guest (${result.problem ?? `exit status ${result.status}`}); its last words:\n${p.tail()}`);
  }
  p.done();
}

async function firstStage(tree: GuestTreeWriter, o: InstallOptions, archive: AptArchive, required: DebFile[], all: DebFile[], base: DebFile[], p: InstallProgress): Promise<void> {
  const mirror = archive.mirror;
  let n = 0;
  for (const deb of required) {
    p.step('Unpacking the required packages on the host', ++n, required.length, deb.pkg);
    await tree.unpackDeb(deb.path);
  }
  await tree.linkMergedUsr();
  const text = (s: string) => Buffer.from(s);
  await tree.mkdir('var/lib/dpkg', 0o755);
  await tree.file('var/lib/dpkg/status', Buffer.alloc(0), 0o644);
  await tree.file('var/lib/dpkg/available', Buffer.alloc(0), 0o644);
  await tree.file('etc/fstab', text('# UNCONFIGURED FSTAB FOR BASE SYSTEM\n'), 0o644);
  await tree.file('etc/apt/sources.list', text(`deb ${mirror} ${o.suite} main\n`), 0o644);
  await tree.mkdir('dev', 0o755);
  for (const [name, major, minor] of DEVICES) await tree.node(`dev/${name}`, S_IFCHR, 0o666, major, minor);
  await tree.mkdir('dev/pts', 0o755);
  await tree.mkdir('dev/shm', 0o755);
  for (const [name, target] of [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']] as const) {
    await tree.symlink(`dev/${name}`, target);
  }

  // The debs, where debootstrap --foreign leaves them for the second stage.
  n = 0;
  for (const deb of all) {
    p.step('Handing the packages to the guest', ++n, all.length, deb.pkg);
    await tree.file(`var/cache/apt/archives/${deb.file}`, readFileSync(deb.path), 0o644);
  }

  // The suite's index, where debootstrap's first stage leaves it (its setup_available reads it).
  const listName = `${mirror.replace(/^[^:]+:\/\//, '')}_dists/${o.suite}/main/binary-amd64/Packages`.replace(/\//g, '_');
  await tree.file(`var/lib/apt/lists/${listName}`, readFileSync(archive.packagesIndex()), 0o644);

  // debootstrap itself, from Debian's package, and what its second stage reads.
  const ds = unpackedPackage('debootstrap');
  const scripts = join(ds, 'usr', 'share', 'debootstrap');
  const suiteScript = join(scripts, 'scripts', o.suite);
  if (!existsSync(suiteScript)) throw new Error(`debootstrap knows no suite "${o.suite}"`);
  await tree.mkdir('debootstrap', 0o755);
  await tree.file('debootstrap/debootstrap', readFileSync(join(ds, 'usr', 'sbin', 'debootstrap')), 0o755);
  await tree.file('debootstrap/functions', readFileSync(join(scripts, 'functions')), 0o644);
  await tree.file('debootstrap/suite-script', readFileSync(realpathSync(suiteScript)), 0o644);
  for (const f of readdirSync(join(scripts, 'scripts')).filter((f) => f.endsWith('-common'))) {
    await tree.file(`debootstrap/${f}`, readFileSync(join(scripts, 'scripts', f)), 0o644);
  }
  const line = (s: string) => text(`${s}\n`);
  await tree.file('debootstrap/arch', line('amd64'), 0o644);
  await tree.file('debootstrap/suite', line(o.suite), 0o644);
  await tree.file('debootstrap/mirror', line(mirror), 0o644);
  await tree.file('debootstrap/variant', line(o.variant), 0o644);
  await tree.file('debootstrap/required', line(required.map((d) => d.pkg).join(' ')), 0o644);
  await tree.file('debootstrap/base', line(base.map((d) => d.pkg).join(' ')), 0o644);
  await tree.file('debootstrap/debpaths', text(all.map((d) => `${d.pkg} /var/cache/apt/archives/${d.file}\n`).join('')), 0o644);
}
