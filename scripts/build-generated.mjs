// Part of the build (after tsc): every JSON Schema keel ships, precompiled into
// dist/generated/validators.cjs (src/validators/build.ts makes it, src/validators/ reads it).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(join(root, 'dist', 'src', p)).href);
const { precompiledSource } = await dist('validators/build.js');
const { PRECOMPILED_FILE } = await dist('validators/index.js');

const { source, validators } = precompiledSource();
const file = join(root, PRECOMPILED_FILE);
mkdirSync(dirname(file), { recursive: true });
// Written beside, then renamed: a keel started meanwhile reads the old file or the new one.
writeFileSync(`${file}.${process.pid}`, source);
renameSync(`${file}.${process.pid}`, file);
process.stderr.write(`build-validators: ${validators} validators, ${Math.round(source.length / 1024)} KB in ${PRECOMPILED_FILE}\n`);
