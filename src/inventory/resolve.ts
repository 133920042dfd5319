// Turns a RawInventory (from YAML or INI) into the resolved Inventory: group membership,
// roles, merged variables and connections. All precedence rules live here; load.ts states
// them for the README.
import os from 'node:os';
import path from 'node:path';
import { ConfigError, configErrorsOf } from '../errors.js';
import { closest } from '../suggest.js';
import { unique } from '../lists.js';
import type { RawConnection, RawGroup, RawHost, RawInventory, RawVars, Ref, RoleRef } from './raw.js';
import { lookupSshHost, readSshConfig, type SshConfig, type SshHostOptions } from './ssh-config.js';
import type { Connection, Group, Host, Inventory, RoleInstance, VarDefinition, Vars } from './types.js';
import { isConnectionVar } from './ansible-connection.js';
import { mergeHostVars, type HostVars, type KeelLayer } from './host-vars.js';
import { throwAll } from './yaml.js';

export interface ResolveOptions {
  env: string;
  /** -e values: highest precedence, taken literally (never rendered as templates). */
  extraVars?: RawVars;
  isKnownRole?: (name: string) => boolean;
  knownRoles?: readonly string[];
  /** The user's OpenSSH config (~/.ssh/config), if any. */
  userSshConfig?: SshConfig;
  /** A host's `target: NAME`: the connection of that local target (src/target/registry.ts). */
  localTarget?: (ref: Ref) => Promise<RawConnection>;
}

const MAX_JUMP_DEPTH = 8;

export async function resolveInventory(raw: RawInventory, opts: ResolveOptions): Promise<Inventory> {
  const groups = groupTable(raw);
  throwAll([...checkGroupRefs(raw, groups), ...checkRoles(raw, opts), ...checkInstanceNames(raw)]);
  throwAll(findCycles(groups));

  const parents = new Map<string, string[]>();
  for (const g of groups.values()) for (const c of g.children) parents.set(c.name, [...(parents.get(c.name) ?? []), g.name]);
  const order = new Map([...groups.keys()].map((name, i) => [name, i]));

  const groupsByHost = new Map(raw.hosts.map((h) => [h.name, groupsOf(h, groups, parents, order)]));
  const layersByHost = new Map([...groupsByHost].map(([h, names]) => [h, names.map((n) => groups.get(n)!)]));
  const errors: ConfigError[] = [];
  const varsByHost = new Map<string, HostVars>();
  for (const rawHost of raw.hosts) {
    try {
      varsByHost.set(rawHost.name, mergeHostVars(rawHost.ansibleLayers ?? [], keelLayers(raw, layersByHost.get(rawHost.name)!, rawHost, opts.extraVars)));
    } catch (err) {
      errors.push(...configErrorsOf(err));
    }
  }
  throwAll(errors);
  const connections = new ConnectionResolver(raw, layersByHost, opts.userSshConfig, await localTargets(raw, opts), varsByHost);
  const hosts: Host[] = [];
  for (const rawHost of raw.hosts) {
    const hostGroups = groupsByHost.get(rawHost.name)!;
    const layers = layersByHost.get(rawHost.name)!;
    const merged = varsByHost.get(rawHost.name)!;
    if (connections.inCycle.has(rawHost.name)) continue; // already reported with its cycle
    const instances = roleInstances([...layers.flatMap((g) => g.roles), ...rawHost.roles]);
    try {
      hosts.push({
        name: rawHost.name,
        groups: hostGroups,
        roles: unique(instances.map((r) => r.role)),
        roleInstances: instances,
        connection: await connections.forHost(rawHost.name, []),
        vars: merged.values,
        varLocations: merged.locations,
        literalVars: unique([...Object.keys(opts.extraVars?.values ?? {}), ...merged.literal]),
        location: rawHost.location,
        varSources: merged.sources,
        ...(merged.unevaluable.length && { unevaluable: merged.unevaluable }),
        ...(merged.secretVars.length && { secretVars: merged.secretVars }),
        ...(Object.keys(merged.connectionVars).length && { connectionVars: merged.connectionVars }),
      });
    } catch (err) {
      if (err instanceof ConfigError) errors.push(err);
      else throw err;
    }
  }
  throwAll(errors);

  return {
    env: opts.env,
    format: raw.format ?? 'yaml',
    varDefinitions: varDefinitions(raw, hosts, groupsByHost, opts.extraVars),
    file: raw.path,
    knownHostsFile: raw.knownHosts ? path.resolve(path.dirname(raw.path), expandHome(raw.knownHosts)) : undefined,
    vars: { ...ansibleShown(raw.ansibleVars), ...raw.vars.values },
    hosts,
    groups: [...groups.values()].map(
      (g): Group => ({
        name: g.name,
        roles: g.roles.map((r) => r.name),
        vars: { ...ansibleShown(g.ansibleVars), ...g.vars.values },
        children: g.children.map((c) => c.name),
        ...(g.serial !== undefined && { serial: g.serial }),
        ...(g.maxFailPercentage !== undefined && { maxFailPercentage: g.maxFailPercentage }),
        location: g.location,
      }),
    ),
    ...(raw.ansibleFile !== undefined &&
      raw.ansibleSources && {
        ansible: { file: raw.ansibleFile, inventoryDir: raw.ansibleSources.inventoryDir, playbookDir: raw.ansibleSources.playbookDir },
      }),
  };
}

/** keel's own layers for a host, above the Ansible tree's: env vars < groups < host < -e. */
function keelLayers(raw: RawInventory, groups: RawGroup[], host: RawHost, extra: RawVars | undefined): KeelLayer[] {
  return [
    { label: 'keel inventory vars', vars: raw.vars },
    ...groups.map((g) => ({ label: `keel inventory group ${g.name}`, vars: g.vars })),
    { label: `keel inventory host ${host.name}`, vars: host.vars },
    ...(extra ? [{ label: '-e', vars: extra }] : []),
  ];
}

/** An Ansible group's (or `all`'s) own variables as `keel inventory` shows the group:
 *  connection variables aside (they are each host's connection). */
function ansibleShown(vars: RawVars | undefined): Vars {
  return Object.fromEntries(Object.entries(vars?.values ?? {}).filter(([k]) => !isConnectionVar(k)));
}

/** Groups by name in order of appearance, `all` first (implicit unless the file defines it). */
function groupTable(raw: RawInventory): Map<string, RawGroup> {
  const table = new Map<string, RawGroup>();
  const defined = raw.groups.find((g) => g.name === 'all');
  table.set(
    'all',
    defined ?? {
      name: 'all',
      location: { file: raw.file },
      roles: [],
      vars: { values: {}, locations: {} },
      children: [],
      hosts: [],
      connection: {},
    },
  );
  for (const g of raw.groups) table.set(g.name, g);
  return table;
}

function checkGroupRefs(raw: RawInventory, groups: Map<string, RawGroup>): ConfigError[] {
  const errors: ConfigError[] = [];
  const known = [...groups.keys()];
  const check = (ref: Ref, where: string): void => {
    if (ref.name === 'all') {
      errors.push(new ConfigError(`group "all" cannot be listed in ${where}: it already contains every host`, ref.location));
    } else if (!groups.has(ref.name)) {
      if (raw.implicitGroups) {
        groups.set(ref.name, {
          name: ref.name,
          location: ref.location,
          roles: [],
          vars: { values: {}, locations: {} },
          children: [],
          hosts: [],
          connection: {},
        });
        return;
      }
      const guess = closest(ref.name, known);
      const listed = known.filter((k) => k !== 'all');
      errors.push(
        new ConfigError(
          `unknown group "${ref.name}" in ${where} (${guess ? `did you mean "${guess}"? ` : ''}known groups: ${listed.join(', ') || 'none'})`,
          ref.location,
        ),
      );
    }
  };
  for (const h of raw.hosts) for (const ref of h.groups) check(ref, `the groups of host "${h.name}"`);
  for (const g of [...groups.values()]) for (const ref of g.children) check(ref, `the children of group "${g.name}"`);
  return errors;
}

function checkRoles(raw: RawInventory, opts: ResolveOptions): ConfigError[] {
  const known = opts.knownRoles;
  const isKnown = opts.isKnownRole ?? (known ? (name: string) => known.includes(name) : undefined);
  if (!isKnown) return [];
  const refs: [Ref, string][] = [
    ...raw.groups.flatMap((g) => g.roles.map((r): [Ref, string] => [r, `group "${g.name}"`])),
    ...raw.hosts.flatMap((h) => h.roles.map((r): [Ref, string] => [r, `host "${h.name}"`])),
  ];
  return refs
    .filter(([ref]) => !isKnown(ref.name))
    .map(([ref, where]) => {
      const guess = known ? closest(ref.name, known) : undefined;
      const hints = [guess && `did you mean "${guess}"?`, known && `known roles: ${known.join(', ') || 'none'}`].filter(Boolean);
      return new ConfigError(`unknown role "${ref.name}" in ${where}${hints.length ? ` (${hints.join(' ')})` : ''}`, ref.location);
    });
}

/** Each cycle once, reported where the reference that closes it is written. */
function findCycles(groups: Map<string, RawGroup>): ConfigError[] {
  const errors: ConfigError[] = [];
  const done = new Set<string>();
  const visit = (name: string, stack: string[]): void => {
    if (done.has(name)) return;
    for (const child of groups.get(name)?.children ?? []) {
      const at = stack.indexOf(child.name);
      if (at >= 0) {
        const cycle = [...stack.slice(at), child.name].join(' -> ');
        errors.push(new ConfigError(`group cycle: ${cycle} (a group cannot contain itself through children)`, child.location));
      } else visit(child.name, [...stack, child.name]);
    }
    done.add(name);
  };
  for (const name of groups.keys()) visit(name, [name]);
  return errors;
}

/** `all`, then every group containing the host directly or through children: ancestors
 *  before descendants, unrelated groups in order of appearance. */
function groupsOf(host: RawHost, groups: Map<string, RawGroup>, parents: Map<string, string[]>, order: Map<string, number>): string[] {
  const member = new Set<string>(['all']);
  const add = (name: string): void => {
    if (member.has(name)) return;
    member.add(name);
    for (const p of parents.get(name) ?? []) add(p);
  };
  for (const ref of host.groups) add(ref.name);
  for (const g of groups.values()) if (g.hosts.some((h) => h.name === host.name)) add(g.name);

  const result: string[] = [];
  const pending = new Set(member);
  while (pending.size > 0) {
    const ready = [...pending].filter((g) => (parents.get(g) ?? []).every((p) => !pending.has(p)));
    ready.sort((a, b) => order.get(a)! - order.get(b)!);
    const next = ready[0]!; // groups form a DAG (checked), so one is always ready
    result.push(next);
    pending.delete(next);
  }
  return result;
}

/** One instance per role entry; an entry listed again (a group and its host both name
 *  `daemon[recalc]`) is one instance where the later entry's variables win key by key. */
function roleInstances(refs: RoleRef[]): RoleInstance[] {
  const byKey = new Map<string, RoleInstance>();
  for (const ref of refs) {
    const key = ref.instance === undefined ? ref.name : `${ref.name}[${ref.instance}]`;
    const prev = byKey.get(key);
    byKey.set(key, {
      role: ref.name,
      ...(ref.instance !== undefined && { name: ref.instance }),
      vars: { ...prev?.vars, ...ref.vars?.values },
      varLocations: { ...prev?.varLocations, ...ref.vars?.locations },
      location: prev?.location ?? ref.location,
    });
  }
  return [...byKey.values()];
}

/** A role listed twice in one `roles:` list is a mistake unless each use has its own name:
 *  the ids of its resources and handlers (`daemon[recalc]/...`) must stay apart. */
function checkInstanceNames(raw: RawInventory): ConfigError[] {
  const errors: ConfigError[] = [];
  const lists: [RoleRef[], string][] = [
    ...raw.groups.map((g): [RoleRef[], string] => [g.roles, `group "${g.name}"`]),
    ...raw.hosts.map((h): [RoleRef[], string] => [h.roles, `host "${h.name}"`]),
  ];
  for (const [refs, where] of lists) {
    const seen = new Set<string>();
    for (const ref of refs) {
      const key = ref.instance === undefined ? ref.name : `${ref.name}[${ref.instance}]`;
      if (seen.has(key)) {
        errors.push(
          new ConfigError(
            ref.instance === undefined
              ? `role "${ref.name}" is listed twice in the roles of ${where}: ` +
                `to use it twice, give each use a name ({role: ${ref.name}, name: ..., vars: {...}})`
              : `instance "${key}" is listed twice in the roles of ${where}: instance names must differ`,
            ref.location,
          ),
        );
      }
      seen.add(key);
    }
  }
  return errors;
}

/** Every place a variable is set, with the hosts it reaches (see VarDefinition). */
function varDefinitions(raw: RawInventory, hosts: Host[], groupsByHost: Map<string, string[]>, extra: RawVars | undefined): VarDefinition[] {
  const names = hosts.map((h) => h.name);
  const inGroup = (g: string) => names.filter((h) => groupsByHost.get(h)?.includes(g));
  const defs: VarDefinition[] = [];
  const add = (vars: RawVars, reach: string[]) => {
    for (const k of Object.keys(vars.values)) defs.push({ name: k, location: vars.locations[k]!, hosts: reach });
  };
  add(raw.vars, names);
  for (const g of raw.groups) add(g.vars, inGroup(g.name));
  for (const h of raw.hosts) add(h.vars, names.includes(h.name) ? [h.name] : []);
  defs.push(...ansibleDefinitions(raw, names));
  if (extra) add(extra, names);
  const instanceRefs: [RoleRef, string[]][] = [
    ...raw.groups.flatMap((g) => g.roles.map((r): [RoleRef, string[]] => [r, inGroup(g.name)])),
    ...raw.hosts.flatMap((h) => h.roles.map((r): [RoleRef, string[]] => [r, [h.name]])),
  ];
  for (const [ref, reach] of instanceRefs) {
    for (const k of Object.keys(ref.vars?.values ?? {})) {
      defs.push({
        name: k,
        location: ref.vars!.locations[k]!,
        hosts: reach,
        instance: { role: ref.name, ...(ref.instance !== undefined && { name: ref.instance }) },
      });
    }
  }
  return defs;
}

/** Each variable of the Ansible tree where it is written, with the hosts whose layers hold it.
 *  It may be Ansible's own (read by a playbook keel does not run): unknown ones only warn. */
function ansibleDefinitions(raw: RawInventory, names: string[]): VarDefinition[] {
  const byPlace = new Map<string, VarDefinition>();
  for (const h of raw.hosts) {
    if (!names.includes(h.name)) continue;
    for (const layer of h.ansibleLayers ?? []) {
      for (const k of Object.keys(layer.vars.values)) {
        if (isConnectionVar(k)) continue;
        const location = layer.vars.locations[k]!;
        const key = `${k}\0${location.file}:${location.line}:${location.column}`;
        const d = byPlace.get(key) ?? { name: k, location, hosts: [], fromAnsible: true };
        if (!d.hosts.includes(h.name)) d.hosts.push(h.name);
        byPlace.set(key, d);
      }
    }
  }
  return [...byPlace.values()];
}

/** Each `target:` host's connection from its local target; every unknown name reported at once. */
async function localTargets(raw: RawInventory, opts: ResolveOptions): Promise<Map<string, RawConnection>> {
  const found = new Map<string, RawConnection>();
  const errors: ConfigError[] = [];
  for (const h of raw.hosts) {
    if (!h.target) continue;
    try {
      if (h.connection.sshConfig || h.connection.sshHost) {
        throw new ConfigError(`host "${h.name}" has both target: and ssh_config/ssh_host; keep one`, h.target.location);
      }
      if (!opts.localTarget) throw new ConfigError('local targets (target:) cannot be used here', h.target.location);
      found.set(h.name, await opts.localTarget(h.target));
    } catch (err) {
      if (err instanceof ConfigError) errors.push(err);
      else throw err;
    }
  }
  throwAll(errors);
  return found;
}

/** Later layers win for every key they set. */
function mergeConnections(layers: RawConnection[]): RawConnection {
  const merged: RawConnection = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  return merged;
}

/**
 * Connection precedence: built-in defaults < the Ansible tree's connection variables (ranked
 * as Ansible ranks them) < env `connection` < groups' `connection` < host keys.
 * OpenSSH config: ~/.ssh/config fills only what the inventory leaves unset (the host's
 * address is the alias looked up); a file named by `ssh_config` (or an alias named by
 * `ssh_host`) is stronger: its values beat env and group settings, only keys set on the host
 * itself beat it.
 */
class ConnectionResolver {
  private readonly done = new Map<string, Connection>();
  /** Hosts found in a jump cycle: the cycle is reported once, not once per host in it. */
  readonly inCycle = new Set<string>();
  private readonly files = new Map<string, SshConfig | undefined>();
  private readonly hosts: Map<string, RawHost>;

  constructor(
    private readonly raw: RawInventory,
    /** Each host's groups, in precedence order. */
    private readonly groupLayers: Map<string, RawGroup[]>,
    private readonly userConfig: SshConfig | undefined,
    /** Hosts that are local targets: their connection, between groups' and the host's own. */
    private readonly targets: Map<string, RawConnection>,
    /** Each host's variables: the connection its Ansible variables make comes first. */
    private readonly vars: Map<string, HostVars>,
  ) {
    this.hosts = new Map(raw.hosts.map((h) => [h.name, h]));
  }

  async forHost(name: string, stack: string[]): Promise<Connection> {
    const cached = this.done.get(name);
    if (cached) return cached;
    const groups = this.groupLayers.get(name) ?? [];
    const host = this.hosts.get(name)!;
    const target = this.targets.get(name);
    const ansible = this.vars.get(name);
    const merged = mergeConnections([ansible?.connection ?? {}, this.raw.connection, ...groups.map((g) => g.connection), target ?? {}, host.connection]);
    const own = mergeConnections([ansible?.ownConnection ?? {}, host.connection]);

    let ssh: SshHostOptions | undefined;
    let alias: string;
    const strong = merged.sshConfig !== undefined || merged.sshHost !== undefined;
    if (strong) {
      alias = merged.sshHost ?? name;
      const ref = merged.sshConfig;
      const file = ref ? path.resolve(path.dirname(this.raw.path), expandHome(ref.name)) : undefined;
      const config = file ? await this.readFile(file, ref!) : this.userConfig;
      const where = ref?.location ?? host.location;
      const shown = ref?.name ?? 'the user SSH config';
      if (!config) throw new ConfigError(`ssh_host "${alias}": no SSH config file to look it up in`, where);
      ssh = lookupSshHost(config, alias);
      if (!ssh.matched) throw new ConfigError(`no "Host" entry for "${alias}" in ${shown}`, where);
    } else {
      alias = merged.address ?? name;
      const found = target ? undefined : this.userConfig && lookupSshHost(this.userConfig, alias); // a local target is reached directly
      ssh = found?.matched ? found : undefined;
    }
    const pick = <T>(key: keyof RawConnection, fromSsh: T | undefined): T | undefined =>
      strong ? ((own[key] as T | undefined) ?? fromSsh ?? (merged[key] as T | undefined)) : ((merged[key] as T | undefined) ?? fromSsh);

    const sshJump = ssh?.proxyJump?.map((n) => ({ name: n, location: ssh!.locations['proxyjump']! }));
    const invKeys = (strong ? own.keys : merged.keys)?.map((k) => this.keyPath(k));
    const sshKeys = ssh?.identityFiles.length ? ssh.identityFiles : undefined;
    const keyFiles = strong ? (invKeys ?? sshKeys ?? merged.keys?.map((k) => this.keyPath(k))) : (invKeys ?? sshKeys);

    const connection: Connection = {
      address: strong ? (own.address ?? ssh?.hostName ?? alias) : (ssh?.hostName ?? alias),
      port: pick('port', ssh?.port) ?? 22,
      user: pick('user', ssh?.user) ?? os.userInfo().username,
      keyFiles: keyFiles ?? [],
      agent: merged.agent ?? Boolean(process.env['SSH_AUTH_SOCK']),
      jump: [],
      connectTimeoutMs: (merged.connectTimeoutSec ?? 10) * 1000,
      become: merged.become ?? false,
      becomeUser: merged.becomeUser ?? 'root',
      becomePasswordVar: merged.becomePasswordVar ?? 'become_password',
      ...(strong && { sshConfigHost: alias }),
      ...(merged.knownHostsFile !== undefined && { knownHostsFile: merged.knownHostsFile }),
      ...(merged.localTarget !== undefined && { localTarget: merged.localTarget }),
    };
    connection.jump = await this.jumpChain(pick('jump', sshJump) ?? [], [...stack, name]);
    this.done.set(name, connection);
    return connection;
  }

  /** Jump hops, outermost first: a hop that has its own jump hosts brings them along. */
  private async jumpChain(refs: Ref[], stack: string[]): Promise<Connection[]> {
    const chain: Connection[] = [];
    for (const ref of refs) {
      const hop = await this.hop(ref, stack);
      chain.push(...hop.jump, { ...hop, jump: [] });
    }
    return chain;
  }

  private async hop(ref: Ref, stack: string[]): Promise<Connection> {
    if (stack.includes(ref.name)) {
      for (const name of stack) this.inCycle.add(name);
      throw new ConfigError(`jump host cycle: ${[...stack, ref.name].join(' -> ')}`, ref.location);
    }
    if (stack.length > MAX_JUMP_DEPTH) throw new ConfigError(`jump host chain longer than ${MAX_JUMP_DEPTH} hops`, ref.location);
    if (this.hosts.has(ref.name)) {
      return this.forHost(ref.name, stack);
    }
    // "[user@]address[:port]": env-wide connection settings apply, as to any host.
    const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s[\]]+)(?::([0-9]+))?$/.exec(ref.name);
    const port = m?.[3] === undefined ? undefined : Number(m[3]);
    if (!m || (port !== undefined && (port < 1 || port > 65535))) {
      throw new ConfigError(`invalid jump host "${ref.name}": expected a host name of this inventory or "user@address:port"`, ref.location);
    }
    const address = m[2]!.replace(/^\[(.*)\]$/, '$1');
    const found = this.userConfig && lookupSshHost(this.userConfig, address);
    const ssh = found?.matched ? found : undefined;
    const env = this.raw.connection;
    const connection: Connection = {
      address: ssh?.hostName ?? address,
      port: port ?? env.port ?? ssh?.port ?? 22,
      user: m[1] ?? env.user ?? ssh?.user ?? os.userInfo().username,
      keyFiles: env.keys?.map((k) => this.keyPath(k)) ?? (ssh?.identityFiles.length ? ssh.identityFiles : []),
      agent: env.agent ?? Boolean(process.env['SSH_AUTH_SOCK']),
      jump: [],
      connectTimeoutMs: (env.connectTimeoutSec ?? 10) * 1000,
      become: false,
      becomeUser: 'root',
    };
    const sshJump = ssh?.proxyJump?.map((n) => ({ name: n, location: ssh.locations['proxyjump']! }));
    connection.jump = await this.jumpChain(sshJump ?? [], [...stack, ref.name]);
    return connection;
  }

  private async readFile(file: string, ref: Ref): Promise<SshConfig> {
    if (!this.files.has(file)) this.files.set(file, await readSshConfig(file, ref.name));
    const config = this.files.get(file);
    if (!config) throw new ConfigError(`SSH config file not found: ${ref.name} (looked for ${file})`, ref.location);
    return config;
  }

  /** `~` is the home directory; relative paths are relative to the inventory file. */
  private keyPath(key: string): string {
    return path.resolve(path.dirname(this.raw.path), expandHome(key));
  }
}

export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  return p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}
