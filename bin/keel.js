#!/usr/bin/env node
// The bundled CLI (scripts/bundle.mjs), started with V8's code cache (src/cli/launch.ts): `npm ci`
// builds dist/ through the `prepare` script.
// When this code began, for KEEL_PHASE_TIMES (src/timing.ts): the CLI is loaded after it.
globalThis[Symbol.for('keel.entered')] = performance.now();
const { launch } = await import('../dist/keel/launch.mjs');
process.exitCode = await launch(process.argv);
