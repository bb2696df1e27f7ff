import { describePjdfstest } from './pjdfstest-suite.js';
import type { PjdfstestConfig } from './pjdfstest-runner.js';

/**
 * The server configurations pjdfstest runs against in the kernel suite, one line each. Each takes
 * about 4 minutes on two cores. Others can be run by hand with pjdfstest-run.js.
 */
export const CONFIGURATIONS: PjdfstestConfig[] = [
  // Ids pass through: the server must run as root for the suite's chown and setuid cases.
  { name: 'passthrough', serverArgs: [] },
];

for (const config of CONFIGURATIONS) describePjdfstest(config);
