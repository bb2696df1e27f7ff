import { createReadStream } from 'node:fs';
import { Command, Option } from 'commander';
import { Client } from '../client/client.js';
import { DirentType, LinuxOpenFlag as O, SetattrValid } from '../protocol/constants.js';
import { errnoName, P9Error } from '../protocol/errno.js';

interface ClientFlags {
  uname: string;
  uid: number;
  aname: string;
  msize: number;
  all?: boolean;
}

function withClientOptions(c: Command): Command {
  return c
    .option('--uname <name>', 'user name sent in Tattach', '')
    .addOption(new Option('--uid <n>', 'numeric user sent in Tattach (n_uname)').default(process.getuid?.() ?? 0).argParser(Number))
    .option('--aname <name>', 'export name sent in Tattach', '')
    .addOption(new Option('--msize <bytes>', 'largest message size to ask for').default(1 << 20).argParser(Number));
}

/** Connect, attach, run, and turn a 9P error into one clear line. */
async function session(address: string, what: string, flags: ClientFlags, body: (c: Client, root: number) => Promise<void>): Promise<void> {
  const c = await Client.connect(address, { msize: flags.msize });
  try {
    const root = await c.attach({ uname: flags.uname, nUname: flags.uid, aname: flags.aname });
    await body(c, root);
  } catch (err) {
    if (err instanceof P9Error) throw new Error(`${what}: ${err.message === errnoName(err.errno) ? describeErrno(err.errno) : err.message}`);
    throw err;
  } finally {
    c.close();
  }
}

function describeErrno(errno: number): string {
  const text: Record<string, string> = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    EPERM: 'Operation not permitted',
    ENOTDIR: 'Not a directory',
    EISDIR: 'Is a directory',
    EROFS: 'Read-only file system',
    EEXIST: 'File exists',
    ENXIO: 'No such device or address',
  };
  const name = errnoName(errno);
  return text[name] ? `${text[name]} (${name})` : name;
}

const typeChar: Record<number, string> = {
  [DirentType.DIR]: 'd',
  [DirentType.REG]: '-',
  [DirentType.LNK]: 'l',
  [DirentType.CHR]: 'c',
  [DirentType.BLK]: 'b',
  [DirentType.FIFO]: 'p',
  [DirentType.SOCK]: 's',
};

export function registerClientCommands(program: Command): void {
  withClientOptions(program.command('ls').description('list a directory on a 9P server').argument('<address>', 'tcp:HOST:PORT or unix:PATH').argument('[path]', 'directory', '/'))
    .option('-a, --all', 'include "." and ".."')
    .action((address: string, path: string, flags: ClientFlags) =>
      session(address, `ls ${path}`, flags, async (c, root) => {
        const { fid } = await c.walkPath(root, path);
        await c.open(fid, O.RDONLY);
        const entries = (await c.readdir(fid))
          .filter((e) => flags.all || (e.name.toString() !== '.' && e.name.toString() !== '..'))
          .sort((x, y) => Buffer.compare(x.name, y.name));
        const lines: string[] = [];
        for (const e of entries) {
          const { fid: f } = await c.walk(fid, [e.name]);
          const a = await c.getattr(f);
          await c.clunk(f);
          lines.push(`${typeChar[e.type] ?? '?'}${(a.mode & 0o7777).toString(8).padStart(4, '0')} ${a.uid}:${a.gid} ${a.size.toString().padStart(10)} ${e.name.toString()}`);
        }
        process.stdout.write(lines.map((l) => `${l}\n`).join(''));
      }),
    );

  withClientOptions(program.command('cat').description('print a file from a 9P server').argument('<address>').argument('<path>'))
    .action((address: string, path: string, flags: ClientFlags) =>
      session(address, `cat ${path}`, flags, async (c, root) => {
        const { fid } = await c.walkPath(root, path);
        await c.open(fid, O.RDONLY);
        await c.readAll(fid, (b) => new Promise<void>((resolve) => (process.stdout.write(b) ? resolve() : process.stdout.once('drain', resolve))));
      }),
    );

  withClientOptions(program.command('put').description('write a local file (or stdin) to a path on a 9P server').argument('<address>').argument('<path>').argument('[local]', 'local file; stdin if absent'))
    .action((address: string, path: string, local: string | undefined, flags: ClientFlags) =>
      session(address, `put ${path}`, flags, async (c, root) => {
        const parts = path.split('/').filter(Boolean);
        const name = parts.pop();
        if (!name) throw new Error(`put ${path}: needs a file name`);
        const { fid } = await c.walk(root, parts);
        const existing = await c.walk(fid, [name]).catch(() => null);
        let file = fid;
        if (existing) {
          await c.clunk(fid);
          file = existing.fid;
          await c.open(file, O.WRONLY);
          await c.setattr(file, { valid: SetattrValid.SIZE, size: 0n });
        } else {
          await c.create(fid, name, O.WRONLY, 0o644);
        }
        let offset = 0n;
        for await (const chunk of local ? createReadStream(local) : process.stdin) {
          const b = chunk as Buffer;
          await c.writeAll(file, b, offset);
          offset += BigInt(b.length);
        }
        await c.fsync(file);
      }),
    );

  withClientOptions(program.command('stat').description('show every attribute of a path on a 9P server').argument('<address>').argument('<path>'))
    .action((address: string, path: string, flags: ClientFlags) =>
      session(address, `stat ${path}`, flags, async (c, root) => {
        const { fid } = await c.walkPath(root, path);
        const a = await c.getattr(fid);
        const rows: [string, string][] = [
          ['qid', `type 0x${a.qid.type.toString(16)} version ${a.qid.version} path ${a.qid.path}`],
          ['mode', `0${a.mode.toString(8)}`],
          ['uid', String(a.uid)],
          ['gid', String(a.gid)],
          ['nlink', String(a.nlink)],
          ['rdev', String(a.rdev)],
          ['size', String(a.size)],
          ['blksize', String(a.blksize)],
          ['blocks', String(a.blocks)],
          ['atime', `${a.atimeSec}.${a.atimeNsec.toString().padStart(9, '0')}`],
          ['mtime', `${a.mtimeSec}.${a.mtimeNsec.toString().padStart(9, '0')}`],
          ['ctime', `${a.ctimeSec}.${a.ctimeNsec.toString().padStart(9, '0')}`],
          ['btime', `${a.btimeSec}.${a.btimeNsec.toString().padStart(9, '0')}`],
          ['gen', String(a.gen)],
          ['data_version', String(a.dataVersion)],
        ];
        process.stdout.write(rows.map(([k, v]) => `${k.padEnd(12)} ${v}\n`).join(''));
      }),
    );
}
