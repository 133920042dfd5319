// The built-in roles' templates as Handlebars precompiled them when keel was built
// (scripts/build-generated.mjs, from template-build.ts): compiling a template cost ~3 ms on a
// cold start, and a no-op of the demo's stack compiled ~40 of them on every run. Each is a
// function returning the template's spec, so that V8's code cache can hold it, with the
// paths its render checks and the names it reads: parsing a template for those cost as much.
import { loadGenerated } from '../generated.js';
import type { NameCheck } from './template.js';

export const PRECOMPILED_TEMPLATES = 'templates.cjs';

/** A built-in template as the build found it: Handlebars' spec (a function returning it), the
 *  paths render checks (namesToCheck) and the names it reads (referencedNames). */
export interface PrecompiledTemplate {
  spec: () => TemplateSpecification;
  checks: NameCheck[];
  names: string[];
}

/** By template.ts's sourceKey() of the source. */
export type PrecompiledTemplates = Record<string, PrecompiledTemplate>;

let specs: PrecompiledTemplates | undefined;

export function precompiledTemplate(key: string): PrecompiledTemplate | undefined {
  specs ??= loadGenerated<PrecompiledTemplates>(PRECOMPILED_TEMPLATES) ?? {};
  return Object.prototype.hasOwnProperty.call(specs, key) ? specs[key] : undefined;
}
