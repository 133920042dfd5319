// Compile a host's roles into a plan: render every param with the host's variables on the
// controller, validate it against its type's schema, and fail before anything runs.
import { readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ConfigError, ConfigErrors, KeelError, type SourceLocation } from '../errors.js';
import type { Host, Vars } from '../inventory/types.js';
import { resourceTypes } from '../resources/registry.js';
import { fileType } from '../resources/file.js';
import type { HostPlan, PlannedHandler, PlannedResource } from './plan.js';
import type { Role, RoleLibrary, RoleResource } from './roles.js';
import { EXTRA_VARS_HINT } from '../inventory/extra-vars.js';
import { DECLARED, evaluateWhen, render, renderValue, resolveVars } from './template.js';

export interface CompileOptions {
  env: string;
  /** Decrypted vault values, exposed to templates as `secrets.<key>`. */
  secrets?: Vars;
  /** Only resources carrying one of these tags (a role's name is an implicit tag). */
  tags?: string[];
  root: string;
}

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
const validators = new Map<string, ValidateFunction>();

export function compileHost(host: Host, library: RoleLibrary, opts: CompileOptions): HostPlan {
  const errors: ConfigError[] = [];
  const roles: Role[] = [];
  for (const name of host.roles) {
    try {
      roles.push(library.get(name));
    } catch (err) {
      collect(err, errors, host.location);
    }
  }
  if (errors.length) throw bundle(errors);

  // Role defaults are the lowest precedence, below the environment's own vars.
  // A variable several roles declare (app_user...) takes the default of the first role that
  // gives one: base comes first and owns the shared layout.
  const defaults: Vars = {};
  const defaultLocations: Record<string, SourceLocation> = {};
  for (const r of roles) {
    for (const [k, v] of Object.entries(r.defaults)) {
      if (k in defaults) continue;
      defaults[k] = v;
      if (r.variableLocations[k]) defaultLocations[k] = r.variableLocations[k]!;
    }
  }
  // -e values are taken as they are (never rendered): see inventory/extra-vars.ts.
  const literal = new Set(host.literalVars ?? []);
  const raw: Vars = Object.fromEntries(Object.entries({ ...defaults, ...host.vars }).filter(([k]) => !literal.has(k)));
  const literalValues: Vars = Object.fromEntries([...literal].map((k) => [k, host.vars[k]]));
  const builtins: Vars = {
    secrets: opts.secrets ?? {},
    env: opts.env,
    inventory_hostname: host.name,
    host: { name: host.name, address: host.connection.address, groups: host.groups },
  };
  let vars: Vars;
  try {
    vars = resolveVars(raw, { ...builtins, ...literalValues }, { ...defaultLocations, ...host.varLocations }, host.location);
  } catch (err) {
    throw bundle(collect(err, [], host.location));
  }
  // Declared role variables are known names even when unset (`{{#if nginx_tls}}`).
  (vars as Record<symbol, unknown>)[DECLARED] = new Set(roles.flatMap((r) => Object.keys(r.variables)));
  validateRoleVariables(host, roles, vars, errors);
  if (errors.length) throw bundle(errors);

  const resources: PlannedResource[] = [];
  const handlers = new Map<string, PlannedHandler>();
  const seen = new Map<string, number>();
  for (const role of roles) {
    for (const [name, h] of role.handlers) {
      try {
        handlers.set(`${role.name}:${name}`, { id: `${role.name}:${name}`, run: render(h.run, vars, h.location) });
      } catch (err) {
        collect(err, errors, h.location);
      }
    }
    for (const entry of role.resources) {
      if (opts.tags?.length && !opts.tags.some((t) => t === role.name || entry.tags.includes(t))) continue;
      try {
        for (const item of expandLoop(entry, vars)) {
          const planned = compileResource(role, entry, item, resources.length);
          const n = (seen.get(planned.id) ?? 0) + 1;
          seen.set(planned.id, n);
          if (n > 1) planned.id += `#${n}`;
          resources.push(planned);
        }
      } catch (err) {
        collect(err, errors, entry.location);
      }
    }
  }
  for (const r of resources) for (const n of r.notify) {
    if (!handlers.has(n)) errors.push(new ConfigError(`notifies unknown handler "${n}"`, r.location));
  }
  if (errors.length) throw bundle(errors);
  return { host, vars, resources, handlers };

  function compileResource(role: Role, entry: RoleResource, context: Vars, index: number): PlannedResource {
    const where = entry.location;
    const notify = entry.notify.map((n) => (n.includes(':') ? n : `${role.name}:${n}`));
    let typeName = entry.type;
    if (entry.when !== undefined && !evaluateWhen(entry.when, context, where)) {
      const type = resourceTypes.get(typeName === 'template' ? 'file' : typeName)!;
      return {
        index, role: role.name, typeName, type, params: entry.params, notify, location: where,
        id: `${role.name}/${typeName}:${entry.name ?? index}`,
        skipped: `when: ${String(entry.when)} is false`,
      };
    }
    let params = renderValue(entry.params, context, where) as Record<string, unknown>;
    if (typeName === 'template') params = renderTemplate(role, params, context, where);
    else if (typeName === 'file' && params && typeof params.source === 'string') params = readSource(role, params, where);
    const type = typeName === 'template' ? fileType : resourceTypes.get(typeName)!;
    validateParams(type.name, type.schema, params, where, typeName);
    const normalized = type.normalize ? type.normalize(params as never) : params;
    const id = `${role.name}/${typeName}:${type.identity(normalized)}`;
    return { index, id, role: role.name, typeName, type, params: normalized, notify, location: where };
  }

  function renderTemplate(role: Role, p: Record<string, unknown>, context: Vars, where: SourceLocation): Record<string, unknown> {
    const { src, dest, ...rest } = p as { src?: unknown; dest?: unknown } & Record<string, unknown>;
    if (typeof src !== 'string' || typeof dest !== 'string') {
      throw new ConfigError('template needs src (a file in the role\'s templates/) and dest (an absolute path)', where);
    }
    const file = join(role.dir, 'templates', src);
    if (!existsSync(file)) throw new ConfigError(`template file not found: ${rel(file)}`, where);
    const content = render(readFileSync(file, 'utf8'), context, { file: rel(file), line: 1 });
    return { ...rest, path: dest, content };
  }

  function readSource(role: Role, p: Record<string, unknown>, where: SourceLocation): Record<string, unknown> {
    const { source, ...rest } = p;
    const file = join(role.dir, 'files', String(source));
    if (!existsSync(file)) throw new ConfigError(`file source not found: ${rel(file)}`, where);
    return { ...rest, content: readFileSync(file, 'utf8') };
  }

  function rel(file: string): string {
    const r = relative(opts.root, file);
    return r.startsWith('..') ? file : r;
  }
}

function expandLoop(entry: RoleResource, vars: Vars): Vars[] {
  if (entry.loop === undefined) return [vars];
  const list = renderValue(entry.loop, vars, entry.location);
  if (!Array.isArray(list)) throw new ConfigError(`loop must be a list (or a variable holding one), got ${typeof list}`, entry.location);
  return list.map((item) => ({ ...vars, item }));
}

function validateParams(typeName: string, schema: object, params: unknown, where: SourceLocation, shown: string): void {
  let validate = validators.get(shown);
  if (!validate) {
    const s = shown === 'template' ? templateSchema(schema) : schema;
    validate = ajv.compile(s);
    validators.set(shown, validate);
  }
  if (!validate(params)) {
    throw bundle((validate.errors ?? []).map((e) => new ConfigError(`${shown}: ${describeAjvError(e)}`, where)));
  }
  void typeName;
}

/** A template's params are a file's, rendered: path+content come from dest+src. */
function templateSchema(fileSchema: object): object {
  return fileSchema;
}

export function describeAjvError(e: ErrorObject): string {
  const at = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'params';
  switch (e.keyword) {
    case 'additionalProperties':
      return `unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"${at === 'params' ? '' : ` in ${at}`}`;
    case 'required':
      return `missing required key "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'enum':
      return `${at} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${at} ${e.message}`;
  }
}

/** Role variables are validated against the role's JSON Schema; variables named like a role's
 *  (`nginx_*`) but unknown to it are refused, since they are almost always typos. */
function validateRoleVariables(host: Host, roles: Role[], vars: Vars, errors: ConfigError[]): void {
  const declared = new Set(roles.flatMap((r) => Object.keys(r.variables)));
  const where = (v: string): SourceLocation => host.varLocations?.[v] ?? host.location;
  for (const role of roles) {
    for (const [name, schema] of Object.entries(role.variables)) {
      if (!(name in vars)) continue;
      const key = `${role.name}.${name}`;
      let validate = validators.get(key);
      if (!validate) {
        const { default: _d, description: _desc, ...rest } = schema;
        validate = ajv.compile(rest);
        validators.set(key, validate);
      }
      if (!validate(vars[name])) {
        const e = validate.errors?.[0];
        const detail = e ? describeAjvError(e).replace(/^params /, '') : 'is invalid';
        const fromE = host.literalVars?.includes(name) && where(name).file.startsWith('-e ');
        errors.push(new ConfigError(`variable "${name}" (role ${role.name}) ${detail}, got ${JSON.stringify(vars[name])}`, where(name), fromE ? { hint: EXTRA_VARS_HINT } : undefined));
      }
    }
    const prefix = `${role.name}_`;
    for (const name of Object.keys(host.vars)) {
      if (name.startsWith(prefix) && !declared.has(name)) {
        const close = closest(name, [...declared]);
        errors.push(new ConfigError(`unknown variable "${name}" for role ${role.name}${close ? ` (did you mean "${close}"?)` : ''}`, where(name)));
      }
    }
  }
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word, c);
    if (d < bestD) { bestD = d; best = c; }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function collect(err: unknown, into: ConfigError[], where: SourceLocation): ConfigError[] {
  // A resource type's normalize() (requireAbsolute...) cannot know where its params were
  // written: the entry being compiled is that place.
  const located = (e: ConfigError) => (e.location ? e : new ConfigError(e.message, where, { cause: e, hint: e.hint }));
  if (err instanceof ConfigErrors) into.push(...err.errors.map(located));
  else if (err instanceof ConfigError) into.push(located(err));
  else if (err instanceof KeelError) into.push(new ConfigError(err.message, undefined, { cause: err }));
  else into.push(new ConfigError(err instanceof Error ? err.message : String(err), where, { cause: err }));
  return into;
}

function bundle(errors: ConfigError[]): ConfigError | ConfigErrors {
  return errors.length === 1 ? errors[0]! : new ConfigErrors(errors);
}
