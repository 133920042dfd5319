// An Ansible inventory (INI or Ansible's YAML) with the group_vars/ and host_vars/ beside it,
// and those of the playbook's directory (`ansible_playbook_dir:`), ranked for each host as
// Ansible ranks them (vars/manager.py get_vars, with the default VARIABLE_PRECEDENCE), lowest
// first:
//
//   1. the inventory file's `[all:vars]`            5. inventory group_vars/<group>
//   2. the inventory file's `[<group>:vars]`        6. playbook group_vars/<group>
//   3. inventory group_vars/all                     7. the inventory file's host line
//   4. playbook group_vars/all                      8. inventory host_vars/<host>
//                                                   9. playbook host_vars/<host>
//
// Within 2, 5 and 6 a host's groups go by depth (parents before children: `all` is 0, its
// children 1...), then `ansible_group_priority`, then name (inventory/helpers.py sort_groups).
// A later layer replaces a whole variable (hash_behaviour=replace). Each host gets its layers
// (RawHost.ansibleLayers); resolve.ts merges them and puts keel's own on top.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { readAnsibleYamlInventory } from './ansible-yaml-inventory.js';
import { findVarsFiles, readVarsFile, type ReadOptions, type VarsFile } from './ansible-vars-files.js';
import { detectFormat } from './format.js';
import { readIniInventory } from './ini.js';
import type { AnsibleLayer, RawGroup, RawHost, RawInventory, RawVars } from './raw.js';

export interface TreeOptions extends ReadOptions {
  /** Absolute: the directory of the playbook, whose group_vars/ and host_vars/ Ansible reads too. */
  playbookDir?: string;
}

/** Reads the inventory at `abs` (text already read) and every vars file that reaches a host. */
export async function readAnsibleTree(abs: string, text: string, opts: TreeOptions): Promise<RawInventory> {
  const file = opts.display(abs);
  const inv = detectFormat(abs, text) === 'ini' ? readIniInventory(text, file, abs) : readAnsibleYamlInventory(text, file, abs);
  return layerAnsibleTree(inv, abs, opts);
}

/** An inventory already read (a dynamic inventory script's, ansible-script.ts) with every vars
 *  file beside `abs` that reaches a host. */
export async function layerAnsibleTree(inv: RawInventory, abs: string, opts: TreeOptions): Promise<RawInventory> {
  const bases: [string, string][] = [['inventory', path.dirname(abs)]];
  if (opts.playbookDir) bases.push(['playbook', opts.playbookDir]);

  const cache = new Map<string, Promise<VarsFile | null>>();
  const read = (f: string) => {
    if (!cache.has(f)) cache.set(f, readVarsFile(f, opts));
    return cache.get(f)!;
  };
  const fileLayers = async (kind: 'group_vars' | 'host_vars', name: string): Promise<AnsibleLayer[][]> => {
    const out: AnsibleLayer[][] = [];
    for (const [label, base] of bases) {
      const layers: AnsibleLayer[] = [];
      for (const f of findVarsFiles(path.join(base, kind), name)) {
        const vf = await read(f);
        if (!vf) continue;
        const shown = `${label} ${kind}/${name}${vf.encrypted ? ' (Ansible Vault)' : ''}`;
        layers.push({ label: shown, vars: vf.vars, secrets: vf.secrets, unsafe: vf.unsafe, ...(kind === 'host_vars' && { hostLevel: true }) });
      }
      out.push(layers);
    }
    return out;
  };

  const groups = new Map(inv.groups.map((g) => [g.name, g]));
  const depth = groupDepths(inv.groups);
  const inline = (label: string, vars: RawVars | undefined, hostLevel = false): AnsibleLayer[] =>
    vars && Object.keys(vars.values).length ? [{ label, vars, secrets: new Set(), unsafe: new Set(), ...(hostLevel && { hostLevel }) }] : [];
  // Only the groups that have hosts are looked up, as Ansible does (a file for an empty
  // group is never read, nor decrypted).
  const groupFiles = new Map<string, AnsibleLayer[][]>();
  const filesOf = async (name: string): Promise<AnsibleLayer[][]> => {
    if (!groupFiles.has(name)) groupFiles.set(name, await fileLayers('group_vars', name));
    return groupFiles.get(name)!;
  };

  for (const host of inv.hosts) {
    const mine = sortGroups(ansibleGroupsOf(host, inv.groups), groups, depth);
    const [invAll = [], pbAll = []] = await filesOf('all');
    const perGroup = await Promise.all(mine.map(filesOf));
    const [invHost = [], pbHost = []] = await fileLayers('host_vars', host.name);
    host.ansibleLayers = [
      ...inline('inventory file: all', inv.ansibleVars),
      ...mine.flatMap((g) => inline(`inventory file: group ${g}`, groups.get(g)!.ansibleVars)),
      ...invAll,
      ...pbAll,
      ...perGroup.flatMap(([inventory = []]) => inventory),
      ...perGroup.flatMap(([, playbook = []]) => playbook),
      ...inline(`inventory file: host ${host.name}`, host.ansibleVars, true),
      ...invHost,
      ...pbHost,
    ];
  }
  return { ...inv, ansibleSources: { inventoryDir: path.dirname(abs), ...(opts.playbookDir && { playbookDir: opts.playbookDir }) } };
}

/** Reads the file for readAnsibleTree, with the error keel gives for a missing one. */
export function readInventoryText(abs: string, shown: string): string {
  try {
    return readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'a directory: name the inventory file in it' : (err as Error).message;
    throw new ConfigError(`cannot read ${shown} (${why}; looked for ${abs})`);
  }
}

/** The groups that list the host, and their ancestors (`all` aside). */
function ansibleGroupsOf(host: RawHost, groups: RawGroup[]): string[] {
  const parents = new Map<string, string[]>();
  for (const g of groups) for (const c of g.children) parents.set(c.name, [...(parents.get(c.name) ?? []), g.name]);
  const out = new Set<string>();
  const add = (name: string): void => {
    if (out.has(name)) return;
    out.add(name);
    for (const p of parents.get(name) ?? []) add(p);
  };
  for (const g of groups) if (g.hosts.some((h) => h.name === host.name)) add(g.name);
  return [...out];
}

/** Ansible's group depth: the longest path from `all` (whose children, explicit or not, are 1). */
function groupDepths(groups: RawGroup[]): Map<string, number> {
  const parents = new Map<string, string[]>();
  for (const g of groups) for (const c of g.children) parents.set(c.name, [...(parents.get(c.name) ?? []), g.name]);
  const depth = new Map<string, number>();
  const visit = (name: string, stack: Set<string>): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    if (stack.has(name)) return 0; // a cycle: resolve.ts reports it
    stack.add(name);
    const d = 1 + Math.max(0, ...(parents.get(name) ?? []).map((p) => visit(p, stack)));
    stack.delete(name);
    depth.set(name, d);
    return d;
  };
  for (const g of groups) visit(g.name, new Set());
  return depth;
}

function sortGroups(names: string[], groups: Map<string, RawGroup>, depth: Map<string, number>): string[] {
  const key = (n: string): [number, number, string] => [depth.get(n) ?? 1, groups.get(n)?.ansiblePriority ?? 1, n];
  return [...names].sort((a, b) => {
    const [da, pa, na] = key(a);
    const [db, pb, nb] = key(b);
    return da - db || pa - pb || (na < nb ? -1 : na > nb ? 1 : 0);
  });
}
