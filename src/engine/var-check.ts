// Typos in inventory variables: a variable the inventory sets that no role of the hosts it
// reaches declares or reads, and no other inventory variable refers to, does nothing; almost
// always it is a misspelling (`databse_url`). A name some other role declares is a setting
// for that role (an environment-wide `demo_title` on a host without role demo), not a typo. Refused before anything runs, where it is
// written, with the closest declared name. An Ansible INI inventory carries Ansible's own
// variables too: there it is a warning.
//
// Not checked: names starting with `x_` (free variables, on purpose), `ansible_*`, and the
// sudo password variable (`become_password` or the host's `become_password_var`).
import { ConfigError, formatLocation, type SourceLocation } from '../errors.js';
import { didYouMean } from '../suggest.js';
import type { Host, Inventory, Unevaluable, VarDefinition } from '../inventory/types.js';
import { connectionField } from '../inventory/ansible-connection.js';
import { sharedClosure, type RoleLibrary } from './roles.js';
import { collectReferencedNames } from './template.js';

/** Names every render context has (compile.ts), never set by an inventory on purpose. */
const BUILTINS = new Set(['secrets', 'env', 'inventory_hostname', 'host', 'role_instance', 'item', 'facts', 'group_members']);

export const FREE_PREFIX = 'x_';

export interface VarCheck {
  errors: ConfigError[];
  warnings: string[];
}

interface Known {
  /** Declared by a role (or shared, through `uses:`): the candidates for a suggestion. */
  declared: Set<string>;
  /** Declared, or read by a template, `when:`, a param or another variable. */
  used: Set<string>;
}

export function checkInventoryVariables(inv: Inventory, library: RoleLibrary): VarCheck {
  const out: VarCheck = { errors: [], warnings: [] };
  const defs = inv.varDefinitions ?? [];
  const warned = new Set<string>();
  const hosts = new Map(inv.hosts.map((h) => [h.name, h]));
  // Names inventory values refer to (`database_url: "postgres://{{db_user}}@..."`).
  const fromInventory = new Set<string>();
  for (const h of inv.hosts) {
    collectReferencedNames(h.vars, fromInventory);
    for (const i of h.roleInstances ?? []) collectReferencedNames(i.vars, fromInventory);
  }
  const byHost = new Map<string, Known>();
  const byRole = new Map<string, Known>();
  const roleKnown = (role: string): Known | undefined => {
    if (!byRole.has(role)) {
      try {
        const r = library.get(role);
        const shared = library.shared();
        const declared = new Set([...Object.keys(r.variables), ...sharedClosure([...r.uses, ...Object.keys(r.variables)], shared)]);
        byRole.set(role, { declared, used: new Set([...declared, ...library.references(role)]) });
      } catch {
        return undefined; // an unknown or broken role is reported by compile, with its location
      }
    }
    return byRole.get(role);
  };
  const hostKnown = (h: Host): Known => {
    let k = byHost.get(h.name);
    if (!k) {
      k = { declared: new Set(), used: new Set(fromInventory) };
      for (const role of h.roles) {
        const rk = roleKnown(role);
        rk?.declared.forEach((n) => k!.declared.add(n));
        rk?.used.forEach((n) => k!.used.add(n));
      }
      byHost.set(h.name, k);
    }
    return k;
  };

  let anywhere: Set<string> | undefined;
  const declaredAnywhere = (): Set<string> => {
    if (!anywhere) {
      anywhere = new Set(Object.keys(library.shared().variables));
      for (const name of library.names()) roleKnown(name)?.declared.forEach((n) => anywhere!.add(n));
    }
    return anywhere;
  };
  for (const d of defs) {
    const reach = d.hosts.map((n) => hosts.get(n)).filter((h): h is Host => !!h);
    if (!reach.length || isFree(d.name, reach)) continue;
    // Hosts without roles yet (keel inventory on a new environment): nothing to check against.
    // An INI inventory never lists roles: there every unknown variable is worth a warning.
    if (inv.format !== 'ini' && reach.every((h) => h.roles.length === 0)) continue;
    let known: Known[];
    if (d.instance) {
      const rk = roleKnown(d.instance.role);
      if (!rk) continue;
      known = [{ declared: rk.declared, used: new Set([...rk.used, ...fromInventory]) }];
    } else known = reach.map(hostKnown);
    if (known.some((k) => k.used.has(d.name))) continue;
    // A name some role of the project or keel declares is a setting for that role, left where
    // a host without it also gets it (an environment-wide variable): not a typo.
    if (!d.instance && declaredAnywhere().has(d.name)) continue;
    const candidates = [...new Set(known.flatMap((k) => [...k.declared]))];
    const m = message(d, reach, candidates, inv.format === 'ini' || !!d.fromAnsible);
    const left = leftOut(d, reach);
    if (typeof m !== 'string') out.errors.push(m);
    else {
      out.warnings.push(left ? `${m}; its value is left out: ${left}` : m);
      if (left) warned.add(placeOf(d.name, d.location));
    }
  }
  const unevaluable = unevaluableChecks(inv, (h) => hostKnown(h).used, warned);
  out.errors.push(...unevaluable.errors);
  out.warnings.push(...unevaluable.warnings);
  return out;
}

const placeOf = (name: string, at: SourceLocation) => `${name}\0${formatLocation(at)}`;

/** What keel cannot evaluate in the value this definition gives the hosts it reaches, if so. */
function leftOut(d: VarDefinition, reach: Host[]): string | undefined {
  const u = reach.flatMap((h) => h.unevaluable ?? []).find((x) => x.name === d.name && formatLocation(x.location) === formatLocation(d.location));
  return u && describe(u);
}

const describe = (u: Unevaluable): string => (u.expression !== undefined ? `${u.expression}: ${u.why}` : u.why);

/**
 * A value from the Ansible tree that keel cannot evaluate (inventory/jinja.ts) is left out of
 * the host's variables. Where a role reads it (or another variable refers to it), or it is a
 * connection setting, going on without it would be wrong: refused, where it is written, with
 * the expression and what to write instead. One no role reads keeps the unused-variable
 * warning, which says it is left out; where that check stays quiet (a name some other role
 * declares, hosts without roles yet), a warning of its own says so: never left out silently.
 */
function unevaluableChecks(inv: Inventory, used: (h: Host) => Set<string>, warned: Set<string>): VarCheck {
  const byPlace = new Map<string, { u: Unevaluable; hosts: string[]; read: boolean }>();
  for (const h of inv.hosts) {
    for (const u of h.unevaluable ?? []) {
      const read = !!u.connection || used(h).has(u.name);
      const key = `${placeOf(u.name, u.location)}\0${read}`;
      const entry = byPlace.get(key) ?? { u, hosts: [], read };
      entry.hosts.push(h.name);
      byPlace.set(key, entry);
    }
  }
  const out: VarCheck = { errors: [], warnings: [] };
  for (const { u, hosts, read } of byPlace.values()) {
    const whose = hosts.length === 1 ? `host ${hosts[0]}` : `hosts ${hosts.join(', ')}`;
    if (!read) {
      if (!warned.has(placeOf(u.name, u.location))) {
        out.warnings.push(`${formatLocation(u.location)}: warning: "${u.name}" (${whose}) is left out, no role reads it: ${describe(u)}`);
      }
      continue;
    }
    const instead = u.keel ? `keel's equivalent: ${u.keel}; or ` : '';
    const where = u.connection ? `the host's ${connectionField(u.name) ?? 'connection'} in the keel inventory` : `${u.name} in the keel inventory`;
    const what = `keel cannot evaluate "${u.name}" (${whose}), which ${u.connection ? 'its connection needs' : 'a role reads'}: ${describe(u)}`;
    out.errors.push(new ConfigError(what, u.location, { hint: `${instead}set ${where} (it wins over the Ansible tree)` }));
  }
  return out;
}

function message(d: VarDefinition, reach: Host[], candidates: string[], ini: boolean): ConfigError | string {
  const roles = d.instance ? [d.instance.role] : [...new Set(reach.flatMap((h) => h.roles))];
  const prefixed = roles.find((r) => d.name.startsWith(`${r}_`));
  const whom = d.instance
    ? `role ${d.instance.role}${d.instance.name !== undefined ? ` (instance ${d.instance.name})` : ''}`
    : reach.length === 1
      ? `any role of host ${reach[0]!.name}`
      : `any role of the hosts it applies to (${reach.map((h) => h.name).join(', ')})`;
  const hint = didYouMean(d.name, candidates);
  // Named like a role of these hosts: said as before this check existed.
  const text = prefixed ? `unknown variable "${d.name}" for role ${prefixed}${hint}` : `variable "${d.name}" is not declared or used by ${whom}${hint}`;
  const free =
    `a variable kept on purpose (read by a tool other than keel) can be named ${FREE_PREFIX}${d.name}: ` + `names starting with ${FREE_PREFIX} are not checked`;
  if (ini) return `${formatAt(d)}warning: ${text} (an Ansible variable? ignored)`;
  return new ConfigError(text, d.location, prefixed ? undefined : { hint: free });
}

function formatAt(d: VarDefinition): string {
  const l = d.location;
  return l.line === undefined ? `${l.file}: ` : `${l.file}:${l.line}${l.column !== undefined ? `:${l.column}` : ''}: `;
}

function isFree(name: string, hosts: Host[]): boolean {
  if (name.startsWith(FREE_PREFIX) || name.startsWith('ansible_') || BUILTINS.has(name)) return true;
  return hosts.some((h) => name === (h.connection.becomePasswordVar ?? 'become_password'));
}
