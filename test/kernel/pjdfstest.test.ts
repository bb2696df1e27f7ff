import { describePjdfstest } from './pjdfstest-suite.js';
import type { PjdfstestConfig } from './pjdfstest-runner.js';

/**
 * The server configurations pjdfstest runs against in the kernel suite, one line each. Each takes
 * about 4 minutes on two cores. Others can be run by hand with pjdfstest-run.js.
 */
export const CONFIGURATIONS: PjdfstestConfig[] = [
  // Ids pass through: the server must run as root, and allow devices and setuid files, for the suite's cases.
  { name: 'passthrough', serverArgs: ['--allow-privileged', 'all'] },
  // The guest's ids, modes and devices live in xattrs: the server runs as an ordinary user.
  { name: 'mapped-xattr', serverArgs: ['--security-model', 'mapped-xattr', '--user', 'nobody'] },
];

for (const config of CONFIGURATIONS) describePjdfstest(config);
