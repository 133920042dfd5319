// Part of the build (after tsc): what keel precompiles for run time, in dist/generated/ (read
// through src/generated.ts): every JSON Schema keel ships as ajv standalone validators
// (src/validators/build.ts) and the built-in roles' Handlebars templates
// (src/engine/template-build.ts).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(join(root, 'dist', 'src', p)).href);
const { GENERATED_DIR } = await dist('generated.js');
const { precompiledSource, PRECOMPILED_VALIDATORS } = await dist('validators/build.js');
const { precompiledTemplatesSource } = await dist('engine/template-build.js');
const { PRECOMPILED_TEMPLATES } = await dist('engine/template-precompiled.js');

function write(name, source, what) {
  const file = join(root, GENERATED_DIR, name);
  mkdirSync(dirname(file), { recursive: true });
  // Written beside, then renamed: a keel started meanwhile reads the old file or the new one.
  writeFileSync(`${file}.${process.pid}`, source);
  renameSync(`${file}.${process.pid}`, file);
  process.stderr.write(`build-generated: ${what}, ${Math.round(source.length / 1024)} KB in ${join(GENERATED_DIR, name)}\n`);
}

const v = precompiledSource();
write(PRECOMPILED_VALIDATORS, v.source, `${v.validators} validators`);
const t = precompiledTemplatesSource();
write(PRECOMPILED_TEMPLATES, t.source, `${t.templates} templates`);
