#!/usr/bin/env node
import { ensureStartupSettings } from './startup-restart.js';

// Before anything else loads: this may restart the process.
ensureStartupSettings();
await import('./program.js');
