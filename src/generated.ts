// What the build generates for keel to load at run time (scripts/build.mjs): precompiled JSON
// Schema validators and Handlebars templates, CommonJS files in dist/generated/. Required
// (synchronously) when first needed; absent when keel runs from its sources before a build,
// and then keel compiles what it needs as it goes. The bundled CLI carries them inside
// (scripts/bundle.mjs), so that V8's code cache covers their functions too.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timed } from './timing.js';

const requireCjs = createRequire(import.meta.url);

/** Set by scripts/bundle.mjs: dist/generated/'s modules, each as a function returning its exports. */
declare const KEEL_GENERATED: Record<string, () => unknown> | undefined;

export const GENERATED_DIR = join('dist', 'generated');

/** dist/generated/<name> of this keel, required; undefined when it was not generated. */
export function loadGenerated<T>(name: string): T | undefined {
  const inBundle = typeof KEEL_GENERATED === 'object' ? KEEL_GENERATED[name] : undefined;
  if (inBundle) return timed('module_load', () => inBundle() as T);
  const file = generatedFile(name);
  return file ? timed('module_load', () => requireCjs(file) as T) : undefined;
}

/** Above this module: dist/src/ (tsc's output), dist/keel/ (the bundle) or src/ (sources). */
function generatedFile(name: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const f = join(dir, GENERATED_DIR, name);
    if (existsSync(f)) return f;
    dir = dirname(dir);
  }
  return undefined;
}
