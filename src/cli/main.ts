#!/usr/bin/env node
import { ensureThreadPoolSize } from './thread-pool.js';

// Before anything else loads: this may restart the process.
ensureThreadPoolSize();
await import('./program.js');
