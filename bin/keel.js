#!/usr/bin/env node
// Compiled entry point: `npm ci` builds dist/ through the `prepare` script.
import { main } from '../dist/src/cli/main.js';
process.exitCode = await main(process.argv);
