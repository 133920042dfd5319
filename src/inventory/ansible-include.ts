// `ansible_inventory: ops/ansible/hosts_test` in a keel YAML inventory: the hosts, groups and
// variables of an Ansible INI inventory, kept as the team maintains it for Ansible, with keel's
// additions on top. An INI file cannot say which roles a group gets; the YAML file does
// (`groups: {web: {roles: [...]}}`), and its own vars, connection and known_hosts apply too.
//
// Merge rules (YAML over INI): hosts and groups are joined by name; a group's roles come from
// the YAML, its vars are the INI's then the YAML's (key by key), its children and hosts are
// both files'; a host's connection keys and vars set in the YAML win; environment vars likewise.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { unique } from '../lists.js';
import { readIniInventory } from './ini.js';
import type { RawConnection, RawGroup, RawHost, RawInventory, RawVars, Ref } from './raw.js';

export async function includeAnsibleInventory(yaml: RawInventory, ref: Ref, display: (abs: string) => string): Promise<RawInventory> {
  const abs = path.resolve(path.dirname(yaml.path), ref.name);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(`ansible_inventory: cannot read ${ref.name} (${why}; looked for ${abs})`, ref.location);
  }
  const ini = readIniInventory(text, display(abs), abs);
  const groups = new Map<string, RawGroup>(ini.groups.map((g) => [g.name, g]));
  for (const g of yaml.groups) {
    const base = groups.get(g.name);
    groups.set(g.name, base ? mergeGroup(base, g) : g);
  }
  const hosts = new Map<string, RawHost>(ini.hosts.map((h) => [h.name, h]));
  for (const h of yaml.hosts) {
    const base = hosts.get(h.name);
    hosts.set(h.name, base ? mergeHost(base, h) : h);
  }
  return {
    ...yaml,
    vars: mergeVars(ini.vars, yaml.vars),
    connection: mergeConnection(ini.connection, yaml.connection),
    hosts: [...hosts.values()],
    groups: [...groups.values()],
    implicitGroups: true,
    ansibleFile: ini.file,
  };
}

function mergeGroup(ini: RawGroup, y: RawGroup): RawGroup {
  return {
    ...ini,
    location: y.location,
    roles: [...ini.roles, ...y.roles],
    vars: mergeVars(ini.vars, y.vars),
    children: unique([...ini.children, ...y.children], byName),
    hosts: unique([...ini.hosts, ...y.hosts], byName),
    connection: mergeConnection(ini.connection, y.connection),
    serial: y.serial ?? ini.serial,
    maxFailPercentage: y.maxFailPercentage ?? ini.maxFailPercentage,
  };
}

function mergeHost(ini: RawHost, y: RawHost): RawHost {
  return {
    ...ini,
    ...y,
    location: ini.location,
    groups: unique([...ini.groups, ...y.groups], byName),
    roles: [...ini.roles, ...y.roles],
    vars: mergeVars(ini.vars, y.vars),
    connection: mergeConnection(ini.connection, y.connection),
  };
}

function mergeVars(a: RawVars, b: RawVars): RawVars {
  return { values: { ...a.values, ...b.values }, locations: { ...a.locations, ...b.locations } };
}

function mergeConnection(a: RawConnection, b: RawConnection): RawConnection {
  const out: RawConnection = { ...a };
  for (const [k, v] of Object.entries(b)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** A group or host named twice (in the INI file and in the YAML) is one. */
const byName = (r: Ref) => r.name;
