// Roles are declarative YAML: roles/<name>/role.yaml (+ templates/ and files/ beside it).
// The user's project roles/ is searched first, then keel's built-in roles.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { Ajv } from 'ajv';
import { ConfigError, ConfigErrors, type SourceLocation } from '../errors.js';
import type { Vars } from '../inventory/types.js';
import { resourceTypes } from '../resources/registry.js';
import { sh } from '../shell/quote.js';

export interface RoleResource {
  type: string;
  params: unknown;
  name?: string;
  notify: string[];
  when?: string | boolean;
  loop?: unknown;
  tags: string[];
  location: SourceLocation;
}

export interface RoleHandler {
  name: string;
  /** Shell to run (a service handler is turned into systemctl here). */
  run: string;
  location: SourceLocation;
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
}

const COMMON_KEYS = new Set(['name', 'notify', 'when', 'loop', 'tags']);

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
  constructor(private readonly searchPath: string[]) {}

  static forProject(root: string): RoleLibrary {
    const dirs = [join(root, 'roles'), builtinRolesDir()];
    return new RoleLibrary([...new Set(dirs.map((d) => resolve(d)))]);
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

  /** Whether any file of the role (role.yaml, templates/, files/) contains `word`. */
  mentions(name: string, word: string): boolean {
    const key = `${name}\0${word}`;
    let found = this.mentionCache.get(key);
    if (found === undefined) {
      const role = this.get(name);
      const files = [role.file, ...listFiles(join(role.dir, 'templates')), ...listFiles(join(role.dir, 'files'))];
      found = files.some((f) => readFileSync(f, 'utf8').includes(word));
      this.mentionCache.set(key, found);
    }
    return found;
  }

  get(name: string): Role {
    const cached = this.cache.get(name);
    if (cached) return cached;
    const dir = this.searchPath.map((d) => join(d, name)).find((d) => existsSync(join(d, 'role.yaml')));
    if (!dir) throw new ConfigError(`unknown role "${name}" (known: ${this.names().join(', ') || 'none'})`);
    const role = parseRole(name, dir);
    this.cache.set(name, role);
    return role;
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });

export function parseRole(name: string, dir: string): Role {
  const file = join(dir, 'role.yaml');
  const text = readFileSync(file, 'utf8');
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const at = (node: Node | null | undefined): SourceLocation => {
    if (!node?.range) return { file };
    const p = lc.linePos(node.range[0]);
    return { file, line: p.line, column: p.col };
  };
  if (doc.errors.length) {
    throw new ConfigErrors(doc.errors.map((e) => {
      const p = e.linePos?.[0];
      return new ConfigError(e.message.split('\n')[0]!, { file, line: p?.line, column: p?.col });
    }));
  }
  const root = doc.contents;
  if (!isMap(root)) throw new ConfigError('role.yaml must be a mapping', { file, line: 1 });
  const errors: ConfigError[] = [];
  const allowed = new Set(['name', 'description', 'variables', 'resources', 'handlers']);
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (!allowed.has(key)) errors.push(new ConfigError(`unknown key "${key}" in role ${name} (expected: ${[...allowed].join(', ')})`, at(pair.key as Node)));
  }
  const data = doc.toJS() as Record<string, unknown>;

  const variables = (data.variables ?? {}) as Record<string, Record<string, unknown>>;
  const defaults: Vars = {};
  const variableLocations: Record<string, SourceLocation> = {};
  for (const [v, schema] of Object.entries(variables)) {
    variableLocations[v] = at(doc.getIn(['variables', v], true) as Node);
    if (schema && typeof schema === 'object' && 'default' in schema) defaults[v] = schema.default;
    try {
      ajv.compile(schema);
    } catch (err) {
      errors.push(new ConfigError(`variable "${v}": invalid JSON Schema: ${(err as Error).message}`, at(doc.getIn(['variables', v], true) as Node)));
    }
  }

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
      errors.push(new ConfigError(
        unknown.length
          ? `unknown resource type or key "${unknown[0]}" (types: ${[...resourceTypes.keys(), 'template'].sort().join(', ')}; keys: ${[...COMMON_KEYS].join(', ')})`
          : known.length === 0 ? 'resource has no type' : `one resource per entry, found ${known.join(' and ')}`,
        where,
      ));
      return;
    }
    const type = known[0]!;
    resources.push({
      type,
      params: entry[type],
      name: typeof entry.name === 'string' ? entry.name : undefined,
      notify: toList(entry.notify),
      when: entry.when as string | boolean | undefined,
      loop: entry.loop,
      tags: toList(entry.tags),
      location: where,
    });
  });

  const handlers = new Map<string, RoleHandler>();
  const hNode = root.get('handlers', true);
  if (hNode !== undefined && !isMap(hNode)) errors.push(new ConfigError('handlers must be a mapping of name -> {run: ...} or {service: {name, action}}', at(hNode as Node)));
  for (const [hname, spec] of Object.entries((data.handlers ?? {}) as Record<string, Record<string, unknown>>)) {
    const where = at(doc.getIn(['handlers', hname], true) as Node);
    const run = handlerCommand(spec);
    if (!run) {
      errors.push(new ConfigError(`handler "${hname}" needs run: <shell> or service: {name, action: restart|reload|reload-or-restart}`, where));
      continue;
    }
    handlers.set(hname, { name: hname, run, location: where });
  }
  for (const r of resources) for (const n of r.notify) {
    if (!n.includes(':') && !handlers.has(n)) errors.push(new ConfigError(`notifies unknown handler "${n}" (handlers of role ${name}: ${[...handlers.keys()].join(', ') || 'none'})`, r.location));
  }
  if (errors.length) throw errors.length === 1 ? errors[0]! : new ConfigErrors(errors);
  return { name, dir, file, description: data.description as string | undefined, variables, defaults, variableLocations, resources, handlers };
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
  );
}

function handlerCommand(spec: Record<string, unknown> | undefined): string | undefined {
  if (!spec || typeof spec !== 'object') return undefined;
  if (typeof spec.run === 'string') return spec.run;
  const svc = spec.service as { name?: string; action?: string } | undefined;
  if (svc?.name) {
    const action = svc.action ?? 'restart';
    if (!['restart', 'reload', 'reload-or-restart', 'try-reload-or-restart', 'try-restart'].includes(action)) return undefined;
    return sh`systemctl ${action} -- ${svc.name}`;
  }
  return undefined;
}

function toList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}
