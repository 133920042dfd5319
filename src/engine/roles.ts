// Roles are declarative YAML: roles/<name>/role.yaml (+ templates/ and files/ beside it).
// The user's project roles/ is searched first, then keel's built-in roles.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { checkShellField } from './shell-fields.js';
import { ConfigError, ConfigErrors, throwIfAny, type SourceLocation } from '../errors.js';
import type { Vars } from '../inventory/types.js';
import { resourceTypes } from '../resources/registry.js';
import { sh } from '../shell/quote.js';
import { didYouMean } from '../suggest.js';
import { collectReferencedNames, referencedNames, whenNames } from './template.js';
import { timed } from '../timing.js';
import { checkDeclaration } from '../validators/index.js';
import { RoleStore } from './role-store.js';

/** `when:` as a mapping: conditions on the host, checked by the probe (`exists`, `missing`:
 *  paths), and optionally an expression on the controller (`if`). All must hold. */
export interface HostWhen {
  exists: string[];
  missing: string[];
  if?: string | boolean;
}

export interface RoleResource {
  type: string;
  params: unknown;
  name?: string;
  notify: string[];
  when?: string | boolean | HostWhen;
  loop?: unknown;
  tags: string[];
  /** Handlers this resource does the work of when it changes: pending ones are dropped. */
  covers: string[];
  /** Run the handlers due so far before this resource: all (true) or these (names). */
  flushHandlers: boolean | string[];
  location: SourceLocation;
}

export interface RoleHandler {
  name: string;
  /** Shell to run (a service handler is turned into systemctl here). */
  run: string;
  /** Handlers this one does the work of: when both are due, only this one runs. */
  covers: string[];
  location: SourceLocation;
}

/** Variables several roles read (app_user, app_root...), declared once in roles/vars.yaml. */
export interface SharedVariables {
  variables: Record<string, Record<string, unknown>>;
  defaults: Vars;
  locations: Record<string, SourceLocation>;
}

export interface Role {
  name: string;
  dir: string;
  file: string;
  description?: string;
  /** JSON Schema properties of the role's variables. */
  variables: Record<string, Record<string, unknown>>;
  /** Defaults from the variables' `default` keywords. */
  defaults: Vars;
  /** Where each variable is declared in role.yaml. */
  variableLocations: Record<string, SourceLocation>;
  resources: RoleResource[];
  handlers: Map<string, RoleHandler>;
  /** Shared variables (roles/vars.yaml) this role reads: declared for it, with their one default. */
  uses: string[];
}

const COMMON_KEYS = new Set(['name', 'notify', 'when', 'loop', 'tags', 'covers', 'flush_handlers']);

/** The shared declarations file in each roles directory. */
export const SHARED_VARS_FILE = 'vars.yaml';

/** Where keel's own roles are: <package root>/roles. */
export function builtinRolesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'roles'))) return join(dir, 'roles');
    dir = dirname(dir);
  }
  return resolve('roles');
}

export class RoleLibrary {
  private cache = new Map<string, Role>();
  private mentionCache = new Map<string, boolean>();
  private sharedCache: SharedVariables | undefined;
  private refCache = new Map<string, Set<string>>();
  /** role.yaml as data, kept from parsing until references() needs it. */
  private dataCache = new Map<string, unknown>();
  /** Template and source files as read, by path: each host of the run renders the same ones. */
  private fileCache = new Map<string, string | null>();
  constructor(
    private readonly searchPath: string[],
    /** Roles as parsed in earlier runs (role-store.ts); none: every role is parsed. */
    private readonly store?: RoleStore,
  ) {}

  /** roles/vars.yaml of every search directory; the project's declaration of a name wins. */
  shared(): SharedVariables {
    if (this.sharedCache) return this.sharedCache;
    const out: SharedVariables = { variables: {}, defaults: {}, locations: {} };
    for (const d of [...this.searchPath].reverse()) {
      const file = join(d, SHARED_VARS_FILE);
      if (!existsSync(file)) continue;
      const one = timed('roles', () => this.loadShared(file));
      for (const [k, v] of Object.entries(one.variables)) {
        out.variables[k] = v;
        out.locations[k] = one.locations[k]!;
        if (k in one.defaults) out.defaults[k] = one.defaults[k];
        else delete out.defaults[k];
      }
    }
    this.sharedCache = out;
    return out;
  }

  private loadShared(file: string): SharedVariables {
    const key = this.store?.sharedKey(file);
    const stored = key ? this.store!.shared(file, key) : undefined;
    if (stored) return stored;
    const v = parseSharedVariables(file);
    if (key) this.store!.keepShared(file, key, v);
    return v;
  }

  static forProject(root: string): RoleLibrary {
    const dirs = [join(root, 'roles'), builtinRolesDir()];
    return new RoleLibrary([...new Set(dirs.map((d) => resolve(d)))], RoleStore.forProject(root));
  }

  has(name: string): boolean {
    return this.searchPath.some((d) => existsSync(join(d, name, 'role.yaml')));
  }

  names(): string[] {
    const all = new Set<string>();
    for (const d of this.searchPath) {
      if (!existsSync(d)) continue;
      for (const e of readdirSync(d)) if (existsSync(join(d, e, 'role.yaml'))) all.add(e);
    }
    return [...all].sort();
  }

  /** A role's template or source file (templates/, files/, keel's host/), read once per run;
   *  null when there is none. */
  roleFile(file: string): string | null {
    let text = this.fileCache.get(file);
    if (text === undefined) {
      text = readIfThere(file);
      this.fileCache.set(file, text);
    }
    return text;
  }

  /** Every variable name the role reads: in role.yaml (params, defaults, `when:`, `loop:`,
   *  handlers) and in its templates. */
  references(name: string): Set<string> {
    let found = this.refCache.get(name);
    if (!found) {
      found = timed('roles', () => this.readReferences(name));
      this.refCache.set(name, found);
    }
    return found;
  }

  private readReferences(name: string): Set<string> {
    const role = this.get(name);
    const found = this.refCache.get(name) ?? referencesOf(role, this.dataCache.get(name) ?? parseDocument(readFileSync(role.file, 'utf8')).toJS());
    this.dataCache.delete(name);
    return found;
  }

  /** Whether any file of the role (role.yaml, templates/, files/) contains `word`. */
  mentions(name: string, word: string): boolean {
    const key = `${name}\0${word}`;
    let found = this.mentionCache.get(key);
    if (found === undefined) {
      const role = this.get(name);
      const files = [role.file, ...listFiles(join(role.dir, 'templates')), ...listFiles(join(role.dir, 'files'))];
      // Through roleFile: compiling reads the same templates next.
      found = timed('roles', () => files.some((f) => this.roleFile(f)?.includes(word)));
      this.mentionCache.set(key, found);
    }
    return found;
  }

  get(name: string): Role {
    const cached = this.cache.get(name);
    if (cached) return cached;
    const dir = this.searchPath.map((d) => join(d, name)).find((d) => existsSync(join(d, 'role.yaml')));
    if (!dir) throw new ConfigError(`unknown role "${name}" (known: ${this.names().join(', ') || 'none'})`);
    const shared = this.shared();
    const role = timed('roles', () => this.load(name, dir, shared));
    this.cache.set(name, role);
    return role;
  }

  /** From the store when its files are as they were; else parsed (and stored, with its
   *  references, which every run's variable check reads). */
  private load(name: string, dir: string, shared: SharedVariables): Role {
    const key = this.store?.roleKey(dir, shared, listFiles(join(dir, 'templates')));
    const stored = key ? this.store!.role(dir, key) : undefined;
    if (stored && stored.role.name === name) {
      this.refCache.set(name, stored.references);
      return stored.role;
    }
    const { role, data } = readRole(name, dir, shared);
    if (key) {
      const references = referencesOf(role, data);
      this.refCache.set(name, references);
      this.store!.keepRole(dir, key, { role, references });
    } else this.dataCache.set(name, data);
    return role;
  }
}

function readYaml(file: string) {
  const text = readFileSync(file, 'utf8');
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const at = (node: Node | null | undefined): SourceLocation => {
    if (!node?.range) return { file };
    const p = lc.linePos(node.range[0]);
    return { file, line: p.line, column: p.col };
  };
  if (doc.errors.length) {
    throw new ConfigErrors(
      doc.errors.map((e) => {
        const p = e.linePos?.[0];
        return new ConfigError(e.message.split('\n')[0]!, { file, line: p?.line, column: p?.col });
      }),
    );
  }
  return { doc, at };
}

/**
 * A default that depends on the host's distribution release: `default_by_codename:
 * {bookworm: 15, trixie: 17}` (a package's version, a path). Resolved when the plan is compiled
 * for the host's facts (variants.ts); an explicit value of the variable wins over it.
 */
export class CodenameDefault {
  constructor(
    readonly variable: string,
    readonly byCodename: Record<string, unknown>,
    /** Used for a codename the table does not name (`default:` beside the table), if any. */
    readonly fallback: { value: unknown } | undefined,
    readonly location: SourceLocation,
  ) {}
  toJSON(): unknown {
    return { default_by_codename: this.byCodename, ...(this.fallback && { default: this.fallback.value }) };
  }
}

/** Variables as role.yaml and vars.yaml declare them: JSON Schema per name, `default` kept. */
function readVariables(doc: ReturnType<typeof readYaml>['doc'], at: (n: Node | null | undefined) => SourceLocation, errors: ConfigError[]) {
  const data = doc.toJS() as Record<string, unknown>;
  const variables = (data.variables ?? {}) as Record<string, Record<string, unknown>>;
  const defaults: Vars = {};
  const locations: Record<string, SourceLocation> = {};
  for (const [v, schema] of Object.entries(variables)) {
    locations[v] = at(doc.getIn(['variables', v], true) as Node);
    if (schema && typeof schema === 'object' && 'default' in schema) defaults[v] = schema.default;
    if (schema && typeof schema === 'object' && 'default_by_codename' in schema) {
      const table = schema.default_by_codename;
      if (!table || typeof table !== 'object' || Array.isArray(table) || !Object.keys(table).every((k) => /^[a-z][a-z0-9-]*$/.test(k))) {
        errors.push(new ConfigError(`variable "${v}": default_by_codename must map release codenames to values ({bookworm: 15, trixie: 17})`, locations[v]));
      } else {
        const fallback = 'default' in schema ? { value: schema.default } : undefined;
        defaults[v] = new CodenameDefault(v, table as Record<string, unknown>, fallback, locations[v]!);
      }
    }
    try {
      checkDeclaration(schema);
    } catch (err) {
      errors.push(new ConfigError(`variable "${v}": invalid JSON Schema: ${(err as Error).message}`, locations[v]));
    }
  }
  return { variables, defaults, locations };
}

/** roles/vars.yaml: `variables:` only, in role.yaml's form. */
export function parseSharedVariables(file: string): SharedVariables {
  const { doc, at } = readYaml(file);
  const root = doc.contents;
  if (root !== null && !isMap(root)) throw new ConfigError(`${SHARED_VARS_FILE} must be a mapping with "variables:"`, { file, line: 1 });
  const errors: ConfigError[] = [];
  for (const pair of isMap(root) ? root.items : []) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (key !== 'variables') errors.push(new ConfigError(`unknown key "${key}" in ${SHARED_VARS_FILE} (expected: variables)`, at(pair.key as Node)));
  }
  const v = readVariables(doc, at, errors);
  throwIfAny(errors);
  return v;
}

export function parseRole(name: string, dir: string, shared: SharedVariables = { variables: {}, defaults: {}, locations: {} }): Role {
  return readRole(name, dir, shared).role;
}

/** Every variable name a role reads: in role.yaml (`data`: params, defaults, `when:`,
 *  `loop:`, handlers) and in its templates. */
function referencesOf(role: Role, data: unknown): Set<string> {
  const found = collectReferencedNames(data, new Set<string>());
  for (const r of role.resources) {
    const expr = typeof r.when === 'object' ? r.when.if : r.when;
    if (typeof expr === 'string') whenNames(expr).forEach((n) => found.add(n));
  }
  for (const f of listFiles(join(role.dir, 'templates'))) referencedNames(readFileSync(f, 'utf8')).forEach((n) => found.add(n));
  return found;
}

/** The role, and role.yaml as data. */
function readRole(name: string, dir: string, shared: SharedVariables): { role: Role; data: Record<string, unknown> } {
  const file = join(dir, 'role.yaml');
  const { doc, at } = readYaml(file);
  const root = doc.contents;
  if (!isMap(root)) throw new ConfigError('role.yaml must be a mapping', { file, line: 1 });
  const errors: ConfigError[] = [];
  const allowed = new Set(['name', 'description', 'uses', 'variables', 'resources', 'handlers']);
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (!allowed.has(key)) errors.push(new ConfigError(`unknown key "${key}" in role ${name} (expected: ${[...allowed].join(', ')})`, at(pair.key as Node)));
  }
  const data = doc.toJS() as Record<string, unknown>;

  const { variables, defaults, locations: variableLocations } = readVariables(doc, at, errors);

  // `uses: [app_user, app_root]`: shared declarations (roles/vars.yaml) this role reads.
  const uses = toList(data.uses);
  if (data.uses !== undefined && !Array.isArray(data.uses))
    errors.push(new ConfigError('uses must be a list of shared variable names (roles/vars.yaml)', at(root.get('uses', true) as Node)));
  uses.forEach((u, i) => {
    if (u in shared.variables) return;
    errors.push(
      new ConfigError(
        `uses: "${u}" is not a shared variable${didYouMean(u, Object.keys(shared.variables))}; ` +
          `shared variables are declared in roles/${SHARED_VARS_FILE} (known: ${Object.keys(shared.variables).join(', ') || 'none'})`,
        at(doc.getIn(['uses', i], true) as Node),
      ),
    );
  });

  const resources: RoleResource[] = [];
  const resNode = root.get('resources', true);
  if (resNode !== undefined && !isSeq(resNode)) errors.push(new ConfigError('resources must be a list', at(resNode as Node)));
  const items = isSeq(resNode) ? resNode.items : [];
  items.forEach((item, i) => {
    const where = at(item as Node);
    const entry = (data.resources as unknown[])[i] as Record<string, unknown>;
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
      errors.push(new ConfigError('each resource must be a mapping like `file: {path: ...}`', where));
      return;
    }
    const typeKeys = Object.keys(entry).filter((k) => !COMMON_KEYS.has(k));
    const known = typeKeys.filter((k) => resourceTypes.has(k) || k === 'template');
    if (known.length !== 1) {
      const unknown = typeKeys.filter((k) => !known.includes(k));
      errors.push(
        new ConfigError(
          unknown.length
            ? `unknown resource type or key "${unknown[0]}" ` +
              `(types: ${[...resourceTypes.keys(), 'template'].sort().join(', ')}; keys: ${[...COMMON_KEYS].join(', ')})`
            : known.length === 0
              ? 'resource has no type'
              : `one resource per entry, found ${known.join(' and ')}`,
          where,
        ),
      );
      return;
    }
    const type = known[0]!;
    const flush = entry.flush_handlers;
    if (flush !== undefined && typeof flush !== 'boolean' && !(Array.isArray(flush) && flush.every((x) => typeof x === 'string'))) {
      errors.push(new ConfigError('flush_handlers must be true (every handler due) or a list of handler names', where));
    }
    let when: RoleResource['when'];
    try {
      when = parseWhen(entry.when, where);
    } catch (err) {
      errors.push(err as ConfigError);
    }
    resources.push({
      type,
      params: entry[type],
      name: typeof entry.name === 'string' ? entry.name : undefined,
      notify: toList(entry.notify),
      when,
      loop: entry.loop,
      tags: toList(entry.tags),
      covers: toList(entry.covers),
      flushHandlers: Array.isArray(flush) ? flush.map(String) : flush === true,
      location: where,
    });
  });

  const handlers = new Map<string, RoleHandler>();
  const hNode = root.get('handlers', true);
  if (hNode !== undefined && !isMap(hNode))
    errors.push(new ConfigError('handlers must be a mapping of name -> {run: ...} or {service: {name, action}}', at(hNode as Node)));
  for (const [hname, spec] of Object.entries((data.handlers ?? {}) as Record<string, Record<string, unknown>>)) {
    const where = at(doc.getIn(['handlers', hname], true) as Node);
    const run = handlerCommand(spec);
    if (!run) {
      errors.push(new ConfigError(`handler "${hname}" needs run: <shell> or service: {name, action: restart|reload|reload-or-restart}`, where));
      continue;
    }
    const extra = Object.keys(spec).filter((k) => !['run', 'service', 'covers'].includes(k));
    if (extra.length) errors.push(new ConfigError(`handler "${hname}": unknown key "${extra[0]}" (expected: run or service, and covers)`, where));
    handlers.set(hname, { name: hname, run, covers: toList(spec.covers), location: where });
  }
  errors.push(...shellFieldErrors(dir, doc, at, resources, data, (v) => variables[v] ?? (uses.includes(v) ? shared.variables[v] : undefined)));
  const local = (n: string, what: string, where: SourceLocation) => {
    if (!n.includes(':') && !handlers.has(n))
      errors.push(new ConfigError(`${what} unknown handler "${n}" (handlers of role ${name}: ${[...handlers.keys()].join(', ') || 'none'})`, where));
  };
  for (const r of resources) {
    for (const n of r.notify) local(n, 'notifies', r.location);
    for (const n of r.covers) local(n, 'covers', r.location);
    if (Array.isArray(r.flushHandlers)) for (const n of r.flushHandlers) local(n, 'flushes', r.location);
  }
  for (const h of handlers.values()) for (const n of h.covers) local(n, `handler "${h.name}" covers`, h.location);
  throwIfAny(errors);
  return {
    role: { name, dir, file, description: data.description as string | undefined, variables, defaults, variableLocations, resources, handlers, uses },
    data,
  };
}

const WHEN_KEYS = ['exists', 'missing', 'if'];

/** `when:` is an expression (string or boolean), or a mapping of host conditions. */
function parseWhen(value: unknown, where: SourceLocation): RoleResource['when'] {
  if (value === undefined || typeof value === 'string' || typeof value === 'boolean') return value;
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('when must be an expression (`nginx_tls`, `eq app_server "gunicorn"`) or a mapping {exists: PATH, missing: PATH, if: EXPR}', where);
  }
  const w = value as Record<string, unknown>;
  const bad = Object.keys(w).filter((k) => !WHEN_KEYS.includes(k));
  if (bad.length) throw new ConfigError(`when: unknown key "${bad[0]}" (expected: ${WHEN_KEYS.join(', ')})`, where);
  const paths = (k: string): string[] => {
    const v = w[k];
    if (v === undefined) return [];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((p) => typeof p === 'string' && p.length > 0)) throw new ConfigError(`when: ${k} must be a path or a list of paths`, where);
    return list as string[];
  };
  const out: HostWhen = { exists: paths('exists'), missing: paths('missing') };
  if (!out.exists.length && !out.missing.length)
    throw new ConfigError('when: a mapping needs exists: or missing: (a plain expression goes without a mapping)', where);
  if (w.if !== undefined) {
    if (typeof w.if !== 'string' && typeof w.if !== 'boolean') throw new ConfigError('when: if must be an expression', where);
    out.if = w.if;
  }
  return out;
}

/** The shared variables `names` reads, with those their defaults refer to (app_root's
 *  default names app_user: a role that uses app_root gets app_user's default too). */
export function sharedClosure(names: string[], shared: SharedVariables): Set<string> {
  const out = new Set<string>();
  const visit = (k: string): void => {
    if (out.has(k) || !(k in shared.variables)) return;
    out.add(k);
    const text = JSON.stringify(shared.defaults[k] ?? '');
    for (const m of text.matchAll(/\{\{([^}]*)\}\}/g)) for (const w of m[1]!.match(/[A-Za-z_][\w]*/g) ?? []) visit(w);
  };
  names.forEach(visit);
  return out;
}

export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

function handlerCommand(spec: Record<string, unknown> | undefined): string | undefined {
  if (!spec || typeof spec !== 'object') return undefined;
  if (typeof spec.run === 'string') return spec.run;
  const svc = spec.service as { name?: string; action?: string } | undefined;
  if (svc?.name) {
    const action = svc.action ?? 'restart';
    if (!['restart', 'reload', 'reload-or-restart', 'try-reload-or-restart', 'try-restart'].includes(action)) return undefined;
    return sh`systemctl ${action} -- ${svc.name}`.text;
  }
  return undefined;
}

/** The role's shell fields, each checked for bare values (shell-fields.ts). */
function shellFieldErrors(
  dir: string,
  doc: ReturnType<typeof readYaml>['doc'],
  at: (n: Node | null | undefined) => SourceLocation,
  resources: RoleResource[],
  data: Record<string, unknown>,
  schemaOf: (name: string) => Record<string, unknown> | undefined,
): ConfigError[] {
  const errors: ConfigError[] = [];
  /** The field at `path` in role.yaml, if it is a string, checked with `scope`. */
  const check = (what: string, path: (string | number)[], scope: (name: string) => Record<string, unknown> | undefined) => {
    const text: unknown = doc.getIn(path);
    if (typeof text === 'string') errors.push(...checkShellField({ what, text, location: at(doc.getIn(path, true) as Node) }, scope));
  };
  resources.forEach((r, i) => {
    const shellKeys = r.type === 'command' ? ['run', 'unless', 'only_if'] : r.type === 'file' || r.type === 'template' ? ['validate'] : [];
    // `loop: "{{list}}"`: item takes the list's item schema.
    const list = typeof r.loop === 'string' ? /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(r.loop)?.[1] : undefined;
    const itemSchema = list ? (schemaOf(list)?.items as Record<string, unknown> | undefined) : undefined;
    const scope = (v: string) => (v === 'item' ? itemSchema : schemaOf(v));
    for (const k of shellKeys) check(`${r.type} ${k}`, ['resources', i, r.type, k], scope);
  });
  for (const [hname, spec] of Object.entries((data.handlers ?? {}) as Record<string, Record<string, unknown>>)) {
    check(`handler "${hname}" run`, ['handlers', hname, 'run'], schemaOf);
    check(`handler "${hname}" service name`, ['handlers', hname, 'service', 'name'], schemaOf);
  }
  // Templates that are shell scripts (a `#!...sh` first line): all of their text is shell. A
  // template's own `vars:` given as plain words (`vars: {part: workers}`) count as enums.
  const templateVars = new Map<string, Set<unknown>>();
  for (const r of resources) {
    const vars = r.type === 'template' ? (r.params as { vars?: Record<string, unknown> } | undefined)?.vars : undefined;
    for (const [k, v] of Object.entries(vars ?? {})) templateVars.set(k, (templateVars.get(k) ?? new Set()).add(v));
  }
  const templateScope = (v: string) => {
    const values = templateVars.get(v);
    return values && [...values].every((x) => typeof x === 'string' && !x.includes('{{')) ? { enum: [...values] } : schemaOf(v);
  };
  for (const f of listFiles(join(dir, 'templates'))) {
    const text = readFileSync(f, 'utf8');
    if (/^#!\S*\b(ba|da)?sh\b/.test(text))
      errors.push(...checkShellField({ what: `template ${basename(f)}`, text, location: { file: f, line: 1 }, file: true }, templateScope));
  }
  return errors;
}

function toList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/** A file's text, or null when it does not exist (one system call, not a check and a read). */
function readIfThere(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}
