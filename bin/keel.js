#!/usr/bin/env node
// The bundled CLI (scripts/bundle.mjs): `npm ci` builds dist/ through the `prepare` script.
// When this code began, for KEEL_PHASE_TIMES (src/timing.ts): the CLI is loaded after it.
globalThis[Symbol.for('keel.entered')] = performance.now();
const { main } = await import('../dist/keel/main.js');
process.exitCode = await main(process.argv);
