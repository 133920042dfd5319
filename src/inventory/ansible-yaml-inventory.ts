// Reads an inventory in Ansible's YAML format (plugins/inventory/yaml.py) into the same
// RawInventory as the INI reader: top-level keys are groups (usually `all`), each with
// `hosts` (a mapping of host patterns to their variables), `vars` and `children` (groups,
// recursively). Host patterns take ranges and `:port` as in INI. Values are YAML as Ansible
// reads it (pyyaml.ts); an inline `!vault` value in this file is not supported (put it in
// group_vars/ or host_vars/). A key Ansible would skip with a warning is an error here.
import { isAlias, isMap, type Pair } from 'yaml';
import { ConfigError, throwIfAny, type SourceLocation } from '../errors.js';
import { checkConnectionVar } from './ansible-connection.js';
import { expandHostPattern } from './ini.js';
import { UnsafeText, VaultText, pairsOf, parseAnsibleYaml, type AnsibleYaml } from './pyyaml.js';
import { ansibleRawInventory, emptyVars, type RawGroup, type RawHost, type RawInventory, type RawVars } from './raw.js';

type Obj = Record<string, unknown>;

export function readAnsibleYamlInventory(text: string, file: string, absPath: string): RawInventory {
  const y = parseAnsibleYaml(text, file);
  const groups = new Map<string, RawGroup>();
  const hosts = new Map<string, RawHost>();
  const errors: ConfigError[] = [];
  const root = deref(y, y.doc.contents);
  if (!isMap(root) || !isObject(y.data)) {
    throw new ConfigError('an Ansible YAML inventory must be a mapping of group names (usually "all") to groups', y.at(root));
  }

  const group = (name: string, location: SourceLocation): RawGroup => {
    let g = groups.get(name);
    if (!g) {
      g = { name, location, roles: [], vars: emptyVars(), children: [], hosts: [], connection: {}, ansibleVars: emptyVars() };
      groups.set(name, g);
    }
    return g;
  };

  const walkGroup = (name: string, keyNode: unknown, node: unknown, data: unknown): RawGroup => {
    const g = group(name, y.at(keyNode));
    if (data === null || data === undefined) return g;
    const map = deref(y, node);
    if (!isMap(map) || !isObject(data)) {
      errors.push(new ConfigError(`group "${name}" must be a mapping with hosts, vars or children`, y.at(node)));
      return g;
    }
    for (const [key, pair] of pairsOf(map)) {
      const value = data[key];
      const at = y.at(pair.key);
      if (!['hosts', 'vars', 'children'].includes(key)) {
        errors.push(new ConfigError(`unexpected key "${key}" in group "${name}" (expected hosts, vars or children)`, at));
        continue;
      }
      if (value === null || value === undefined) continue;
      const entries = typeof value === 'string' ? { [value]: null } : value;
      if (!isObject(entries)) {
        errors.push(new ConfigError(`"${key}" of group "${name}" must be a mapping`, y.at(pair.value)));
        continue;
      }
      const sub = pairsOf(deref(y, pair.value));
      const keyOf = (k: string): unknown => sub.get(k)?.key ?? pair.key;
      if (key === 'vars') {
        for (const [k, v] of Object.entries(entries)) {
          if (k === 'ansible_group_priority') g.ansiblePriority = priority(v, y.at(sub.get(k)?.value ?? pair.key));
          else setVar(g.ansibleVars!, k, v, y.at(keyOf(k)), sub.get(k));
        }
      } else if (key === 'children') {
        for (const [child, childData] of Object.entries(entries)) {
          const c = walkGroup(child, keyOf(child), sub.get(child)?.value, childData);
          if (!g.children.some((r) => r.name === c.name)) g.children.push({ name: c.name, location: y.at(keyOf(child)) });
        }
      } else {
        for (const [pattern, hostVars] of Object.entries(entries)) {
          const at = y.at(keyOf(pattern));
          let specs: { name: string; port?: number }[];
          try {
            specs = expandHostPattern(pattern, at);
          } catch (err) {
            errors.push(err as ConfigError);
            continue;
          }
          if (hostVars !== null && hostVars !== undefined && !isObject(hostVars)) {
            errors.push(new ConfigError(`host "${pattern}" must have a mapping of variables (or nothing)`, y.at(sub.get(pattern)?.value)));
            continue;
          }
          const varPairs = pairsOf(deref(y, sub.get(pattern)?.value));
          for (const spec of specs) {
            let h = hosts.get(spec.name);
            if (!h) {
              h = { name: spec.name, location: at, groups: [], roles: [], vars: emptyVars(), connection: {}, ansibleVars: emptyVars() };
              hosts.set(spec.name, h);
            }
            if (!g.hosts.some((r) => r.name === spec.name)) g.hosts.push({ name: spec.name, location: at });
            if (spec.port !== undefined) setVar(h.ansibleVars!, 'ansible_port', spec.port, at, undefined);
            for (const [k, v] of Object.entries((hostVars as Obj | null) ?? {}))
              setVar(h.ansibleVars!, k, v, y.at(varPairs.get(k)?.key ?? at), varPairs.get(k));
          }
        }
      }
    }
    return g;
  };

  const setVar = (target: RawVars, key: string, value: unknown, at: SourceLocation, pair: Pair | undefined): void => {
    if (hasTag(value, VaultText)) {
      errors.push(new ConfigError(`"${key}": an inline !vault value in the inventory file itself is not supported; move it to group_vars/ or host_vars/`, at));
      return;
    }
    try {
      checkConnectionVar(key, value, pair ? y.at(pair.value) : at);
    } catch (err) {
      errors.push(err as ConfigError);
      return;
    }
    target.values[key] = unwrap(value);
    target.locations[key] = at;
  };

  // Top-level groups other than `all` are its children: implicit in keel's model.
  for (const [name, pair] of pairsOf(root)) walkGroup(name, pair.key, pair.value, y.data[name]);
  throwIfAny(errors);

  // Ansible's rule: `ungrouped` holds the hosts no group but `all` lists.
  const all = groups.get('all');
  groups.delete('all');
  const listed = new Set([...groups.values()].flatMap((g) => g.hosts.map((h) => h.name)));
  const alone = (all?.hosts ?? []).filter((h) => !listed.has(h.name));
  if (alone.length) {
    const u = group('ungrouped', alone[0]!.location);
    u.hosts.push(...alone.filter((h) => !u.hosts.some((x) => x.name === h.name)));
  }
  return ansibleRawInventory(file, absPath, hosts, groups, all);
}

function deref(y: AnsibleYaml, node: unknown): unknown {
  return isAlias(node) ? node.resolve(y.doc) : node;
}

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof VaultText) && !(v instanceof UnsafeText);
}

function hasTag(v: unknown, cls: typeof VaultText): boolean {
  if (v instanceof cls) return true;
  if (Array.isArray(v)) return v.some((x) => hasTag(x, cls));
  if (v && typeof v === 'object') return Object.values(v).some((x) => hasTag(x, cls));
  return false;
}

/** !unsafe strings as their text (the inventory file's own values are checked for Jinja later). */
function unwrap(v: unknown): unknown {
  if (v instanceof UnsafeText) return v.text;
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  return v;
}

function priority(v: unknown, at: SourceLocation): number {
  const n = typeof v === 'number' ? v : Number(String(v));
  if (!Number.isInteger(n)) throw new ConfigError(`"ansible_group_priority" must be an integer, got ${JSON.stringify(v)}`, at);
  return n;
}
