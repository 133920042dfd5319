// The built-in roles' templates as Handlebars precompiled them when keel was built
// (scripts/build-generated.mjs, from template-build.ts): compiling a template cost ~3 ms on a
// cold start, and a no-op of the demo's stack compiled ~40 of them on every run. Each is a
// function returning the template's spec, so that V8's code cache can hold it.
import { loadGenerated } from '../generated.js';

export const PRECOMPILED_TEMPLATES = 'templates.cjs';

/** By template.ts's sourceKey() of the source: a function returning Handlebars' template spec. */
export type PrecompiledTemplates = Record<string, () => TemplateSpecification>;

let specs: PrecompiledTemplates | undefined;

export function precompiledTemplate(key: string): TemplateSpecification | undefined {
  specs ??= loadGenerated<PrecompiledTemplates>(PRECOMPILED_TEMPLATES) ?? {};
  return Object.prototype.hasOwnProperty.call(specs, key) ? specs[key]!() : undefined;
}
