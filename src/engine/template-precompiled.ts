// The built-in roles' templates as Handlebars precompiled them when keel was built
// (scripts/build-generated.mjs, from template-build.ts): compiling a template cost ~3 ms on a
// cold start, and a no-op of the demo's stack compiled ~40 of them on every run.
import { loadGenerated } from '../generated.js';

export const PRECOMPILED_TEMPLATES = 'templates.cjs';

/** By template.ts's sourceKey() of the source: the source of Handlebars' template spec. */
let specs: Record<string, string> | undefined;

export function precompiledTemplate(key: string): TemplateSpecification | undefined {
  specs ??= loadGenerated<Record<string, string>>(PRECOMPILED_TEMPLATES) ?? {};
  if (!Object.prototype.hasOwnProperty.call(specs, key)) return undefined;
  // As Handlebars' own runtime turns a precompiled template's text into its spec.
  return new Function(`return ${specs[key]!};`)() as TemplateSpecification;
}
