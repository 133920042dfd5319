// Compile a host's roles into a plan: render every param with the host's variables on the
// controller, validate it against its type's schema, and fail before anything runs.
import { dirname, join, relative } from 'node:path';
import type { ErrorObject } from 'ajv';
import { ConfigError, ConfigErrors, KeelError, formatLocation, oneOrMany, throwIfAny, type SourceLocation } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { unique } from '../lists.js';
import type { Host, RoleInstance, Vars } from '../inventory/types.js';
import { resourceTypes } from '../resources/registry.js';
import { fileType } from '../resources/file.js';
import type { HostCondition, HostPlan, PlannedHandler, PlannedResource, VariableOrigin } from './plan.js';
import {
  CodenameDefault,
  builtinRolesDir,
  sharedClosure,
  type HostWhen,
  type Role,
  type RoleLibrary,
  type RoleResource,
  type SharedVariables,
} from './roles.js';
import { FACT_NAMES, describeFacts, type FactName, type HostFacts } from './facts.js';
import { EXTRA_VARS_HINT } from '../inventory/extra-vars.js';
import { DECLARED, collectReferencedNames, evaluateWhen, render, renderValue, resolveVars } from './template.js';
import { declaredValidator, validator } from '../validators/index.js';
import { ReadLog, overlay, type SectionCache, type SectionInputs } from './compile-reuse.js';

export interface CompileOptions {
  env: string;
  /** Decrypted vault values, exposed to templates as `secrets.<key>`. */
  secrets?: Vars;
  /** Only resources carrying one of these tags (a role's name is an implicit tag). */
  tags?: string[];
  root: string;
  /** The host's facts (`facts.*` in templates, `default_by_codename`): the plan is for them. */
  facts?: HostFacts;
  /** Every fact the compilation read is added here (variants.ts: does the plan depend on it?). */
  factsRead?: Set<FactName>;
  /** The inventory's groups and their hosts (`{{#each (group "web")}}`: role lb's backends). */
  groupMembers?: Record<string, GroupMember[]>;
  /** The run's resource sections so far: a host that reads the same as an earlier one takes
   *  its resources and handlers (compile-reuse.ts). */
  sections?: SectionCache;
}

/** A host of a group as other hosts' roles see it. */
export interface GroupMember {
  name: string;
  /** How keel reaches it (SSH). */
  address: string;
  /** How the other hosts reach it: its private_address, else its name. */
  private_address: string;
}

/** The facts a plan is compiled for when none are given (tests, tools): Debian 12 on amd64. */
export const DEFAULT_FACTS: HostFacts = { distribution: 'debian', release: '12', codename: 'bookworm', architecture: 'amd64', service_manager: 'systemd' };

export function compileHost(host: Host, library: RoleLibrary, opts: CompileOptions): HostPlan {
  const errors: ConfigError[] = [];
  const instances = roleInstancesOf(host);
  const uses: Use[] = [];
  for (const inst of instances) {
    try {
      const role = library.get(inst.role);
      uses.push({ inst, role, label: inst.name === undefined ? role.name : `${role.name}[${inst.name}]` });
    } catch (err) {
      collect(err, errors, inst.location);
    }
  }
  let shared: SharedVariables = { variables: {}, defaults: {}, locations: {} };
  try {
    shared = library.shared();
  } catch (err) {
    collect(err, errors, host.location);
  }
  throwIfAny(errors);
  const roles = [...new Map(uses.map((u) => [u.role.name, u.role])).values()];

  const sharedNames = sharedClosure(
    roles.flatMap((r) => [...r.uses, ...Object.keys(r.variables)]),
    shared,
  );
  const { defaults, defaultLocations } = roleDefaults(roles, shared, sharedNames);
  const declared = new Set([...roles.flatMap((r) => Object.keys(r.variables)), ...sharedNames]);

  // -e values are taken as they are (never rendered): see inventory/extra-vars.ts.
  const literal = new Set(host.literalVars ?? []);
  const literalValues: Vars = Object.fromEntries([...literal].map((k) => [k, host.vars[k]]));
  const facts = opts.facts ?? DEFAULT_FACTS;
  // The facts the resource section reads, for a host that reuses it (see SectionCache).
  let sectionFacts: Set<FactName> | undefined;
  const factsRead = {
    add: (name: FactName) => {
      opts.factsRead?.add(name);
      sectionFacts?.add(name);
    },
  };
  const builtins: Vars = {
    secrets: opts.secrets ?? {},
    env: opts.env,
    inventory_hostname: host.name,
    host: { name: host.name, address: host.connection.address, groups: host.groups },
    facts: trackedFacts(facts, factsRead),
    group_members: opts.groupMembers ?? {},
  };
  const resolveFor = (inst: RoleInstance | undefined): Vars => {
    const layered: Vars = { ...defaults, ...host.vars, ...inst?.vars };
    for (const [k, v] of Object.entries(layered)) if (v instanceof CodenameDefault) layered[k] = byCodename(v, builtins.facts as HostFacts, facts);
    const raw = Object.fromEntries(Object.entries(layered).filter(([k]) => !literal.has(k)));
    const locations = { ...defaultLocations, ...host.varLocations, ...inst?.varLocations };
    const vars = resolveVars(raw, { ...builtins, role_instance: inst?.name ?? '', ...literalValues }, locations, inst?.location ?? host.location);
    // Declared role variables are known names even when unset (`{{#if nginx_tls}}`).
    (vars as Record<symbol, unknown>)[DECLARED] = declared;
    return vars;
  };
  let vars: Vars;
  try {
    vars = resolveFor(undefined);
  } catch (err) {
    throw oneOrMany(collect(err, [], host.location));
  }
  // An instance with a name or variables of its own sees its own resolution of every variable
  // (a default like "{{role_instance}}.log" must follow the instance).
  const varsOf = new Map<Use, Vars>();
  for (const u of uses) {
    if (u.inst.name === undefined && Object.keys(u.inst.vars).length === 0) {
      varsOf.set(u, vars);
      continue;
    }
    try {
      varsOf.set(u, resolveFor(u.inst));
    } catch (err) {
      collect(err, errors, u.inst.location);
    }
  }
  throwIfAny(dedupe(errors));
  for (const u of uses) validateRoleVariables(host, u, shared, sharedNames, varsOf.get(u)!, declared, errors);
  throwIfAny(dedupe(errors));

  // The resource section reads the host's values only through `sources` (see SectionCache).
  // A context whose `facts` is not keel's own (a -e variable named facts) is not reused.
  const sources: object[] = [...uses.map((u) => varsOf.get(u)!), host.vars, host.varLocations ?? {}];
  const inputs: SectionInputs = { roles: uses.map((u) => u.role), instances: uses.map((u) => u.inst), facts };
  const reusable = opts.sections?.worthRecording(inputs) && uses.every((u) => varsOf.get(u)!.facts === builtins.facts);
  const cache = reusable ? opts.sections : undefined;
  const earlier = cache?.find(inputs, sources);
  if (earlier) {
    for (const f of earlier.factsRead) opts.factsRead?.add(f);
    vars.facts = { ...facts };
    return { host, vars, resources: earlier.section.resources, handlers: earlier.section.handlers, facts };
  }
  const logs = cache && sources.map((o, i) => new ReadLog(o, i < uses.length ? FACTS_NAME : undefined));
  const read = <T extends object>(i: number, o: T): T => (logs ? (logs[i]!.proxy as T) : o);
  const hostVars = read(uses.length, host.vars);
  const hostVarLocations = read(uses.length + 1, host.varLocations ?? {});
  if (cache) sectionFacts = new Set();

  const resources: PlannedResource[] = [];
  const handlers = new Map<string, PlannedHandler>();
  const seen = new Map<string, number>();
  const labelsOf = new Map<string, string[]>();
  for (const u of uses) labelsOf.set(u.role.name, [...(labelsOf.get(u.role.name) ?? []), u.label]);
  for (const [i, u] of uses.entries()) {
    const { role, label } = u;
    const context = read(i, varsOf.get(u)!);
    for (const [name, h] of role.handlers) {
      try {
        const id = `${label}:${name}`;
        handlers.set(id, { id, run: render(h.run, context, h.location), covers: h.covers.map((c) => qualify(c, label)) });
      } catch (err) {
        collect(err, errors, h.location);
      }
    }
    for (const entry of role.resources) {
      if (opts.tags?.length && !opts.tags.some((t) => t === role.name || t === label || entry.tags.includes(t))) continue;
      try {
        for (const item of expandLoop(entry, context)) {
          const planned = compileResource(role, label, entry, item, resources.length);
          if (planned.type.explainFailure && !planned.skipped) planned.origins = originsOf(entry.params, item, u.inst);
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
  linkHandlers(host, resources, handlers, labelsOf, errors);
  throwIfAny(dedupe(errors));
  if (cache) cache.keep(inputs, logs!, sectionFacts!, { resources, handlers });
  sectionFacts = undefined;
  // Read after compiling (a report, keel inventory) is not a dependency of the plan.
  vars.facts = { ...facts };
  return { host, vars, resources, handlers, facts };

  function compileResource(role: Role, label: string, entry: RoleResource, context: Vars, index: number): PlannedResource {
    const where = entry.location;
    const notify = entry.notify.map((n) => qualify(render(n, context, where), label));
    const covers = entry.covers.map((n) => qualify(render(n, context, where), label));
    let typeName = entry.type;
    const expr = typeof entry.when === 'object' ? entry.when.if : entry.when;
    if (expr !== undefined && !evaluateWhen(expr, context, where)) {
      const type = resourceTypes.get(typeName === 'template' ? 'file' : typeName)!;
      return {
        index,
        role: role.name,
        typeName,
        type,
        params: entry.params,
        notify,
        location: where,
        id: `${label}/${typeName}:${entry.name ?? index}`,
        skipped: `when: ${String(expr)} is false`,
      };
    }
    const hostWhen = typeof entry.when === 'object' ? hostCondition(entry.when, context, where) : undefined;
    let params = renderValue(entry.params, context, where) as Record<string, unknown>;
    if (typeName === 'template') params = renderTemplate(role, params, context, where);
    else if (typeName === 'file' && params && typeof params.source === 'string') params = readSource(role, params, where);
    const type = typeName === 'template' ? fileType : resourceTypes.get(typeName)!;
    validateParams(type.name, type.schema, params, where, typeName);
    const normalized = type.normalize ? type.normalize(params as never) : params;
    const id = `${label}/${typeName}:${type.identity(normalized)}`;
    return {
      index,
      id,
      role: role.name,
      typeName,
      type,
      params: normalized,
      notify,
      location: where,
      ...(hostWhen && { hostWhen }),
      ...(covers.length && { covers }),
      ...(entry.flushHandlers === true && { flushHandlers: true as const }),
      ...(Array.isArray(entry.flushHandlers) && { flushHandlers: entry.flushHandlers.map((n) => qualify(render(n, context, where), label)) }),
    };
  }

  /** The variables `params` name, their values and where each was set (see VariableOrigin). */
  function originsOf(params: unknown, context: Vars, inst: RoleInstance): VariableOrigin[] {
    const names = collectReferencedNames(params, new Set<string>());
    const where = (loc: SourceLocation | undefined) => (loc ? formatLocation(loc) : 'the inventory');
    return [...names]
      .filter((n) => n in context && !(n in builtins) && n !== 'item')
      .map((name) => {
        const d = defaults[name];
        const from =
          name in inst.vars
            ? where(inst.varLocations[name])
            : name in hostVars
              ? where(hostVarLocations[name])
              : d instanceof CodenameDefault
                ? `the default for ${facts.codename} (${where(d.location)})`
                : `the default (${where(defaultLocations[name])})`;
        return { name, value: context[name], from };
      });
  }

  function renderTemplate(role: Role, p: Record<string, unknown>, context: Vars, where: SourceLocation): Record<string, unknown> {
    const { src, dest, vars: local, ...rest } = p as { src?: unknown; dest?: unknown; vars?: unknown } & Record<string, unknown>;
    if (typeof src !== 'string' || typeof dest !== 'string') {
      throw new ConfigError("template needs src (a file in the role's templates/) and dest (an absolute path)", where);
    }
    if (local !== undefined && (!local || typeof local !== 'object' || Array.isArray(local))) {
      throw new ConfigError('template: vars must be a mapping of variables for this rendering only', where);
    }
    const file = join(role.dir, 'templates', src);
    const text = library.roleFile(file);
    if (text === null) throw new ConfigError(`template file not found: ${rel(file)}`, where);
    // `vars:` (already rendered with the params): one template rendered two ways (site_tls).
    const content = render(text, local ? overlay(context, local as Vars) : context, { file: rel(file), line: 1 });
    return { ...rest, path: dest, content };
  }

  function readSource(role: Role, p: Record<string, unknown>, where: SourceLocation): Record<string, unknown> {
    const { source, ...rest } = p;
    const file = sourceFile(role, String(source));
    const content = library.roleFile(file);
    if (content === null) throw new ConfigError(`file source not found: ${rel(file)}`, where);
    return { ...rest, content };
  }

  function rel(file: string): string {
    const r = relative(opts.root, file);
    return r.startsWith('..') ? file : r;
  }
}

/** The roles a host applies, each as an instance (a plain `roles:` entry is one without a
 *  name or variables of its own). */
export function roleInstancesOf(host: Host): RoleInstance[] {
  return host.roleInstances ?? host.roles.map((role) => ({ role, vars: {}, varLocations: {}, location: host.location }));
}

/** A file resource's `source:`: the role's `files/<name>`, or `@keel/<name>`, one of keel's own
 *  host helpers (host/ in keel's package), which several roles install from one copy. */
function sourceFile(role: Role, source: string): string {
  if (source.startsWith(KEEL_HOST_PREFIX)) return join(dirname(builtinRolesDir()), 'host', source.slice(KEEL_HOST_PREFIX.length));
  return join(role.dir, 'files', source);
}

const KEEL_HOST_PREFIX = '@keel/';

/** `facts.*` for templates: reading one records it in `read` (the plan depends on it). */
function trackedFacts(facts: HostFacts, read: { add(name: FactName): void }): Vars {
  const out: Vars = {};
  for (const name of FACT_NAMES) {
    Object.defineProperty(out, name, {
      enumerable: true,
      get: () => {
        read.add(name);
        return facts[name];
      },
    });
  }
  return out;
}

/** A default_by_codename for the host's release: its entry, else the role's plain default. */
function byCodename(d: CodenameDefault, tracked: HostFacts, facts: HostFacts): unknown {
  const codename = tracked.codename;
  if (Object.prototype.hasOwnProperty.call(d.byCodename, codename)) return d.byCodename[codename];
  if (d.fallback) return d.fallback.value;
  throw new ConfigError(
    `variable "${d.variable}" has no default for ${describeFacts(facts)}: the role gives one for ${Object.keys(d.byCodename).join(', ')}`,
    d.location,
    { hint: `set ${d.variable} for this host in the inventory (the value for its release)` },
  );
}

/** One use of a role on the host: `label` prefixes its ids (`daemon[recalc]`). */
interface Use {
  inst: RoleInstance;
  role: Role;
  label: string;
}

/**
 * Role defaults are the lowest precedence, below the environment's own vars. A shared
 * variable (roles/vars.yaml) has one default, used by every role that reads it. A role that
 * still declares a default of its own for a name (older roles) wins over it: the first such
 * role in the host's order, as before shared declarations existed.
 */
function roleDefaults(roles: Role[], shared: SharedVariables, sharedNames: Set<string>) {
  const defaults: Vars = {};
  const defaultLocations: Record<string, SourceLocation> = {};
  for (const k of sharedNames) {
    if (!(k in shared.defaults)) continue;
    defaults[k] = shared.defaults[k];
    defaultLocations[k] = shared.locations[k]!;
  }
  const own = new Set<string>();
  for (const r of roles) {
    for (const [k, v] of Object.entries(r.defaults)) {
      if (own.has(k)) continue;
      own.add(k);
      defaults[k] = v;
      if (r.variableLocations[k]) defaultLocations[k] = r.variableLocations[k]!;
    }
  }
  return { defaults, defaultLocations };
}

/** Every handler a resource or handler names must exist on the host; `covers` is made
 *  transitive (a start covers the restart, which covers the reload). */
function linkHandlers(
  host: Host,
  resources: PlannedResource[],
  handlers: Map<string, PlannedHandler>,
  labelsOf: Map<string, string[]>,
  errors: ConfigError[],
): void {
  const closure = (ids: string[]): string[] => {
    const out = new Set<string>();
    const visit = (id: string) => {
      if (out.has(id)) return;
      out.add(id);
      for (const c of handlers.get(id)?.covers ?? []) visit(c);
    };
    ids.forEach(visit);
    return [...out];
  };
  for (const h of handlers.values()) if (h.covers?.length) h.covers = closure(h.covers).filter((c) => c !== h.id);
  for (const r of resources) if (r.covers) r.covers = closure(r.covers);
  const unknown = (n: string, what: string, where: SourceLocation): void => {
    if (handlers.has(n)) return;
    const [roleName] = n.split(':');
    const labels = labelsOf.get(roleName!);
    const hint =
      labels && !labels.includes(roleName!)
        ? ` (role ${roleName} is used here as ${labels.join(', ')}: name the instance, e.g. "${labels[0]}${n.slice(roleName!.length)}")`
        : !labels && roleName !== n
          ? ` (role ${roleName} is not applied to host ${host.name})`
          : '';
    errors.push(new ConfigError(`${what} unknown handler "${n}"${hint}`, where));
  };
  for (const r of resources) {
    for (const n of r.notify) unknown(n, 'notifies', r.location);
    for (const n of r.covers ?? []) unknown(n, 'covers', r.location);
    if (Array.isArray(r.flushHandlers)) for (const n of r.flushHandlers) unknown(n, 'flushes', r.location);
  }
  for (const h of handlers.values()) for (const n of h.covers ?? []) unknown(n, `handler "${h.id}" covers`, host.location);
}

/** A handler named in a role is that role's (instance's); `role:handler` names another's. */
function qualify(name: string, label: string): string {
  return name.includes(':') ? name : `${label}:${name}`;
}

function hostCondition(when: HostWhen, context: Vars, where: SourceLocation): HostCondition {
  const paths = (list: string[]): string[] =>
    list.map((p) => {
      const path = String(renderValue(p, context, where));
      if (!path.startsWith('/') || path.includes('\n')) throw new ConfigError(`when: a host path must be absolute (one line), got "${path}"`, where);
      return path.length > 1 ? path.replace(/\/+$/, '') : path;
    });
  return { exists: paths(when.exists), missing: paths(when.missing) };
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  return unique(errors, (e) => e.message);
}

function expandLoop(entry: RoleResource, vars: Vars): Vars[] {
  if (entry.loop === undefined) return [vars];
  const list = renderValue(entry.loop, vars, entry.location);
  if (!Array.isArray(list)) throw new ConfigError(`loop must be a list (or a variable holding one), got ${typeof list}`, entry.location);
  return list.map((item) => overlay(vars, { item }));
}

/** Reads of a context's `facts` are not compared by a ReadLog: they are the host's facts
 *  (compared whole), and reading them records what the plan depends on. */
const FACTS_NAME: ReadonlySet<PropertyKey> = new Set(['facts']);

function validateParams(typeName: string, schema: object, params: unknown, where: SourceLocation, shown: string): void {
  const validate = validator('values', shown === 'template' ? templateSchema(schema) : schema);
  if (!validate(params)) {
    throw oneOrMany((validate.errors ?? []).map((e) => new ConfigError(`${shown}: ${describeAjvError(e)}`, where)));
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

/** Role variables are validated against the role's JSON Schema (and a shared variable against
 *  roles/vars.yaml's); variables named like a role (`nginx_*`) but unknown to it are refused,
 *  since they are almost always typos. */
function validateRoleVariables(
  host: Host,
  use: Use,
  shared: SharedVariables,
  sharedNames: Set<string>,
  vars: Vars,
  declared: Set<string>,
  errors: ConfigError[],
): void {
  const { role, inst } = use;
  const where = (v: string): SourceLocation => inst.varLocations[v] ?? host.varLocations?.[v] ?? host.location;
  const check = (name: string, schema: Record<string, unknown>, owner: string): void => {
    if (!(name in vars)) return;
    const validate = declaredValidator(schema);
    if (!validate(vars[name])) {
      const e = validate.errors?.[0];
      const detail = e ? describeAjvError(e).replace(/^params /, '') : 'is invalid';
      const fromE = host.literalVars?.includes(name) && where(name).file.startsWith('-e ');
      errors.push(
        new ConfigError(
          `variable "${name}" (${owner}) ${detail}, got ${JSON.stringify(vars[name])}`,
          where(name),
          fromE ? { hint: EXTRA_VARS_HINT } : undefined,
        ),
      );
    }
  };
  for (const [name, schema] of Object.entries(role.variables)) check(name, schema, `role ${role.name}`);
  for (const name of sharedNames) check(name, shared.variables[name]!, 'shared, roles/vars.yaml');
  const prefix = `${role.name}_`;
  for (const name of new Set([...Object.keys(host.vars), ...Object.keys(inst.vars)])) {
    if (name.startsWith(prefix) && !declared.has(name)) {
      errors.push(new ConfigError(`unknown variable "${name}" for role ${role.name}${didYouMean(name, [...declared])}`, where(name)));
    }
  }
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
