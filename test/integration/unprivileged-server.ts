// Child process for unprivileged.test.ts: load everything as root, then drop to the given user
// (as a daemon does) and serve the directory on a free loopback port, printing "port=N".
import { pino } from 'pino';
import { startServer } from '../../src/index.js';

if (process.argv.length !== 5) {
  process.stderr.write('usage: unprivileged-server DIR UID GID (started by unprivileged.test.ts)\n');
  process.exit(2);
}
const [root, uid, gid] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
process.setgroups!([]);
process.setgid!(gid);
process.setuid!(uid);
const running = await startServer({ root, listen: 'tcp:127.0.0.1:0', log: pino({ level: 'silent' }) });
const a = running.address;
process.stdout.write(`port=${a.kind === 'tcp' ? a.port : 0}\n`);
process.on('SIGTERM', () => void running.close().then(() => process.exit(0)));
