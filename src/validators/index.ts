// JSON Schema validators, one per distinct schema (by its JSON text) and flavor (flavors.ts).
// Every schema keel ships (resource params, the inventory, the built-in roles' variables) is
// precompiled when keel is built (ajv's standalone code, scripts/build-generated.mjs, into
// dist/generated/validators.cjs, src/generated.ts); any other (a project's own role) is compiled by ajv on first
// use, and ajv itself is loaded only then. Compiling took ~1 ms per schema and loading ajv
// ~40 ms: most of a small no-op's controller time went there on every run.
import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import { loadGenerated } from '../generated.js';
import { timed } from '../timing.js';
import { FLAVORS, type Flavor } from './flavors.js';

/** What scripts/build-generated.mjs writes: by flavor, by the schema's JSON text, a CommonJS
 *  module's body (as a function: V8's code cache keeps it in the bundle) exporting its validator. */
export type Precompiled = Partial<Record<Flavor, Record<string, ValidatorModule>>>;
type ValidatorModule = (module: { exports: ValidateFunction }, exports: ValidateFunction, require: NodeRequire) => void;

export const PRECOMPILED_VALIDATORS = 'validators.cjs';

const requireCjs = createRequire(import.meta.url);
let precompiled: Precompiled | undefined;
const compilers = new Map<Flavor, Ajv>();
const byText = new Map<Flavor, Map<string, ValidateFunction>>();
const byObject = new Map<Flavor, WeakMap<object, ValidateFunction>>();
const declared = new WeakMap<object, ValidateFunction>();
/** Declarations compiled by ajv in this process: valid. */
const checked = new Set<string>();

/** The validator of `schema` (precompiled, or compiled now and kept for the run). */
export function validator(flavor: Exclude<Flavor, 'declarations'>, schema: object): ValidateFunction {
  let objects = byObject.get(flavor);
  if (!objects) byObject.set(flavor, (objects = new WeakMap()));
  let v = objects.get(schema);
  if (v) return v;
  const text = JSON.stringify(schema);
  let texts = byText.get(flavor);
  if (!texts) byText.set(flavor, (texts = new Map()));
  v = texts.get(text) ?? precompiledValidator(flavor, text) ?? timed('schemas', () => compiler(flavor).compile(schema));
  texts.set(text, v);
  objects.set(schema, v);
  return v;
}

/** The validator of a role variable's values, from its declaration. */
export function declaredValidator(declaration: Record<string, unknown>): ValidateFunction {
  let v = declared.get(declaration);
  if (!v) declared.set(declaration, (v = validator('values', valueSchema(declaration))));
  return v;
}

/** Throws ajv's error when `schema` is not a valid JSON Schema (a role's `variables:` entry).
 *  A declaration is its value schema (valueSchema) plus `default`, which may be anything, and
 *  `description`, which must be a string: so one whose value schema is precompiled (thus
 *  valid) and whose description is a string or absent is valid, without compiling it. */
export function checkDeclaration(schema: unknown): void {
  if (schema && typeof schema === 'object' && !Array.isArray(schema)) {
    const d = schema as Record<string, unknown>;
    const text = JSON.stringify(valueSchema(d));
    if ((d.description === undefined || typeof d.description === 'string') && has(load().values, text)) return;
  }
  const text = JSON.stringify(schema);
  if (checked.has(text)) return;
  timed('schemas', () => compiler('declarations').compile(schema as object));
  checked.add(text);
}

function compiler(flavor: Flavor): Ajv {
  let ajv = compilers.get(flavor);
  if (!ajv) {
    const { Ajv } = timed('module_load', () => requireCjs('ajv') as typeof import('ajv'));
    compilers.set(flavor, (ajv = new Ajv(FLAVORS[flavor])));
  }
  return ajv;
}

function load(): Precompiled {
  precompiled ??= loadGenerated<Precompiled>(PRECOMPILED_VALIDATORS) ?? {};
  return precompiled;
}

function has<T>(o: Record<string, T> | undefined, key: string): o is Record<string, T> {
  return !!o && Object.prototype.hasOwnProperty.call(o, key);
}

/** The precompiled validator of `text`. */
function precompiledValidator(flavor: Flavor, text: string): ValidateFunction | undefined {
  const modules = load()[flavor];
  return has(modules, text) ? validatorOf(modules[text]!) : undefined;
}

/** The validator a precompiled module exports. */
export function validatorOf(body: ValidatorModule): ValidateFunction {
  const module = { exports: {} as ValidateFunction };
  body(module, module.exports, requireCjs);
  return module.exports;
}

/** A role variable's declaration as its values are checked: `default` and `description` are
 *  not constraints. */
export function valueSchema(declaration: Record<string, unknown>): Record<string, unknown> {
  const { default: _default, description: _description, ...rest } = declaration;
  return rest;
}
