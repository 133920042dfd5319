// Roles as parsed, kept between runs: parsing a role's YAML (with the line of every node) was
// most of the controller's time in a small no-op, and it gives the same Role until a file it
// read changes. An entry is a JSON file in <project>/.keel/cache/roles/, named by the sha256 of
// everything parseRole read: keel's build, the role's directory, role.yaml, its templates (the
// shell checks read them) and the shared variables it was checked against. A changed byte is
// another entry (the role's older entries are removed then); a role with errors is never kept.
// A `default_by_codename` default (a CodenameDefault, postgres's version) is kept as its table.
//
// Only a bundled keel (bin/keel.js) has a build id: run from its sources (tests), keel parses.
// KEEL_NO_CACHE=1 turns the store off.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Vars } from '../inventory/types.js';
import type { SourceLocation } from '../errors.js';
import { CodenameDefault, type Role, type RoleHandler, type SharedVariables } from './roles.js';

/** Set by scripts/bundle.mjs: a hash of keel's sources and locked dependencies. */
declare const KEEL_BUILD_ID: string | undefined;

export interface StoredRole {
  role: Role;
  /** RoleLibrary.references(): every variable name the role reads. */
  references: Set<string>;
}

/** A StoredRole as JSON: the handlers' Map as its entries, the references as a list, the
 *  defaults that are CodenameDefaults apart from the others. */
interface RoleEntry {
  role: Omit<Role, 'handlers'> & { handlers: [string, RoleHandler][] };
  codenameDefaults?: Record<string, CodenameEntry>;
  references: string[];
}

/** SharedVariables as JSON, its CodenameDefaults apart. */
type SharedEntry = SharedVariables & { codenameDefaults?: Record<string, CodenameEntry> };

interface CodenameEntry {
  byCodename: Record<string, unknown>;
  fallback?: { value: unknown };
  location: SourceLocation;
}

/** `defaults` without its CodenameDefaults, and those as plain data. */
function splitDefaults(defaults: Vars): { plain: Vars; codename: Record<string, CodenameEntry> | undefined } {
  const plain: Vars = {};
  const codename: Record<string, CodenameEntry> = {};
  for (const [k, v] of Object.entries(defaults)) {
    if (v instanceof CodenameDefault) codename[k] = { byCodename: v.byCodename, ...(v.fallback && { fallback: v.fallback }), location: v.location };
    else plain[k] = v;
  }
  return { plain, codename: Object.keys(codename).length ? codename : undefined };
}

/** The defaults as parsed: the plain ones and the CodenameDefaults, in the order the names were declared. */
function joinDefaults(plain: Vars, codename: Record<string, CodenameEntry> | undefined, order: string[]): Vars {
  if (!codename) return plain;
  const out: Vars = {};
  for (const k of order) {
    const c = codename[k];
    if (c) out[k] = new CodenameDefault(k, c.byCodename, c.fallback, c.location);
    else if (k in plain) out[k] = plain[k];
  }
  return out;
}

export class RoleStore {
  constructor(
    private readonly dir: string,
    private readonly buildId: string,
  ) {}

  /** The project's store, or undefined (keel run from its sources, or KEEL_NO_CACHE). */
  static forProject(root: string): RoleStore | undefined {
    const id = typeof KEEL_BUILD_ID === 'string' ? KEEL_BUILD_ID : undefined;
    if (!id || process.env.KEEL_NO_CACHE) return undefined;
    return new RoleStore(join(root, '.keel', 'cache', 'roles'), id);
  }

  /** The key of role `dir` as it is now: its files' contents and the shared variables. */
  roleKey(dir: string, shared: SharedVariables, templates: string[]): string {
    const h = createHash('sha256')
      .update(`${this.buildId}\0role\0${dir}\0`)
      .update(readFileSync(join(dir, 'role.yaml')));
    for (const f of [...templates].sort()) h.update(`\0${relative(dir, f)}\0`).update(readFileSync(f));
    return h.update(`\0${JSON.stringify(shared.variables)}`).digest('hex');
  }

  sharedKey(file: string): string {
    return createHash('sha256').update(`${this.buildId}\0shared\0${file}\0`).update(readFileSync(file)).digest('hex');
  }

  role(dir: string, key: string): StoredRole | undefined {
    const v = this.read(dir, key) as RoleEntry | undefined;
    if (!v) return undefined;
    const defaults = joinDefaults(v.role.defaults, v.codenameDefaults, Object.keys(v.role.variables));
    return { role: { ...v.role, defaults, handlers: new Map(v.role.handlers) }, references: new Set(v.references) };
  }

  keepRole(dir: string, key: string, stored: StoredRole): void {
    const { plain, codename } = splitDefaults(stored.role.defaults);
    const entry: RoleEntry = {
      role: { ...stored.role, defaults: plain, handlers: [...stored.role.handlers] },
      ...(codename && { codenameDefaults: codename }),
      references: [...stored.references],
    };
    this.write(dir, key, entry);
  }

  shared(file: string, key: string): SharedVariables | undefined {
    const v = this.read(file, key) as SharedEntry | undefined;
    if (!v) return undefined;
    const { codenameDefaults, ...rest } = v;
    return { ...rest, defaults: joinDefaults(v.defaults, codenameDefaults, Object.keys(v.variables)) };
  }

  keepShared(file: string, key: string, v: SharedVariables): void {
    const { plain, codename } = splitDefaults(v.defaults);
    const entry: SharedEntry = { ...v, defaults: plain, ...(codename && { codenameDefaults: codename }) };
    this.write(file, key, entry);
  }

  /** Entries are `<hash of the source's path>-<key>.json`. */
  private file(source: string, key: string): string {
    return join(this.dir, `${prefix(source)}-${key}.json`);
  }

  private read(source: string, key: string): unknown {
    try {
      return JSON.parse(readFileSync(this.file(source, key), 'utf8'));
    } catch {
      return undefined; // none yet, or unreadable: parse
    }
  }

  /** Best effort: a store that cannot be written (a read-only checkout) is no store. */
  private write(source: string, key: string, value: unknown): void {
    if (!jsonSafe(value)) return;
    const file = this.file(source, key);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
      renameSync(tmp, file);
      const mine = prefix(source);
      for (const f of readdirSync(this.dir)) {
        if (f.startsWith(`${mine}-`) && f.endsWith('.json') && join(this.dir, f) !== file) rmSync(join(this.dir, f), { force: true });
      }
    } catch {
      // not kept: the next run parses again
    }
  }
}

function prefix(source: string): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 16);
}

/** Whether JSON gives `v` back as it is: YAML's .inf and .nan, -0 and anything not plain
 *  data would not survive (an object's undefined members are left out, and read as before). */
function jsonSafe(v: unknown): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (Array.isArray(v)) return v.every((x) => x !== undefined && jsonSafe(x));
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v).every((x) => x === undefined || jsonSafe(x));
  return false;
}
