// `ansible_inventory: ../ops/ansible/environments/staging/hosts` in a keel YAML inventory: the
// hosts, groups and variables of an Ansible inventory (INI or Ansible's YAML) with the
// group_vars/ and host_vars/ beside it, and those of `ansible_playbook_dir:` (ansible-tree.ts),
// kept as the team maintains them for Ansible, with keel's additions on top. An Ansible
// inventory cannot say which roles a group gets; the YAML file does
// (`groups: {web: {roles: [...]}}`), and its own vars, connection and known_hosts apply too.
//
// Merge rules: hosts and groups are joined by name; a group's roles come from the YAML, its
// children and hosts are both files'. Variables and connection settings: the Ansible tree's,
// resolved for each host as Ansible resolves them, then everything the YAML sets on top
// (its vars, its groups', the host's), so that whatever keel's file says wins.
import { statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { unique } from '../lists.js';
import { layerAnsibleTree, readAnsibleTree, readInventoryText, type TreeOptions } from './ansible-tree.js';
import { readInventoryScript } from './ansible-script.js';
import type { RawConnection, RawGroup, RawHost, RawInventory, RawVars, Ref } from './raw.js';

export async function includeAnsibleInventory(
  yaml: RawInventory,
  ref: Ref,
  opts: Omit<TreeOptions, 'playbookDir'>,
  kind: { script?: boolean } = {},
): Promise<RawInventory> {
  const abs = path.resolve(path.dirname(yaml.path), ref.name);
  const playbookDir = yaml.ansiblePlaybookDir && directory(yaml, yaml.ansiblePlaybookDir);
  const treeOpts = { ...opts, ...(playbookDir && { playbookDir }) };
  let ini: RawInventory;
  if (kind.script) {
    // A dynamic inventory (ansible-script.ts): what the executable prints, group_vars/ beside it.
    ini = await layerAnsibleTree(await readInventoryScript(abs, ref.name, ref.location), abs, treeOpts);
  } else {
    let text: string;
    try {
      text = readInventoryText(abs, ref.name);
    } catch (err) {
      throw new ConfigError(`ansible_inventory: ${(err as Error).message}`, ref.location);
    }
    ini = await readAnsibleTree(abs, text, treeOpts);
  }
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
    ansibleVars: ini.ansibleVars,
    ansibleSources: ini.ansibleSources,
  };
}

function directory(yaml: RawInventory, ref: Ref): string {
  const abs = path.resolve(path.dirname(yaml.path), ref.name);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new ConfigError(`ansible_playbook_dir: ${ref.name} is not a directory (looked for ${abs})`, ref.location);
  return abs;
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
