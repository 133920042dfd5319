// Loading an environment's inventory: find the file, read it (keel YAML, or an Ansible
// inventory with its group_vars/ and host_vars/), validate it, and resolve every host's
// groups, roles, variables and connection.
//
// Variable precedence, lowest to highest (a later level replaces a whole top-level key;
// mappings are not merged, like Ansible's default hash_behaviour=replace):
//   0. an Ansible tree's variables (an INI inventory, or `ansible_inventory:`), ranked for
//      each host as Ansible ranks them (ansible-tree.ts)
//   1. the inventory's `vars` (environment-wide)
//   2. group `vars`: ancestor groups before their children; unrelated groups in the order
//      they appear in the file (`all` first)
//   3. the host's `vars`
//   4. extra vars given on the command line
//
// Connection precedence, lowest to highest: built-in defaults (port 22, the local user,
// ssh-agent when $SSH_AUTH_SOCK is set, 10 s connect timeout, no become, become user root)
// < an Ansible tree's connection variables < the inventory's `connection` < groups'
// `connection` (same order as vars) < the host's own keys. ~/.ssh/config ($KEEL_SSH_CONFIG)
// fills in HostName, Port, User, IdentityFile and ProxyJump for what the inventory leaves
// unset; a host's `ssh_config`/`ssh_host` file is stronger: only keys set on the host itself
// (its own keys, its Ansible inventory line, its host_vars/) beat it.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, formatLocation, throwIfAny } from '../errors.js';
import { didYouMean } from '../suggest.js';
import { ansibleDecrypter } from '../vault/ansible-password.js';
import { includeAnsibleInventory } from './ansible-include.js';
import { readAnsibleTree } from './ansible-tree.js';
import type { RawInventory, RawVars } from './raw.js';
import { resolveInventory } from './resolve.js';
import { readSshConfig, userSshConfigPath } from './ssh-config.js';
import type { Connection, Host, Inventory, Vars } from './types.js';
import { readYamlInventory } from './yaml.js';
import { detectFormat } from './format.js';

export { detectFormat };

export interface LoadOptions {
  /** Project root (contains inventories/). */
  root: string;
  /** Names inventories/<env>.yaml (or .yml) or inventories/<env>.ini. */
  env: string;
  /** --inventory FILE (relative to root): YAML or INI, by extension, else by content. */
  inventoryFile?: string;
  /** -e vars (see extra-vars.ts): highest precedence, literal. */
  extraVars?: RawVars;
  /** Unknown role => error at the role's location. */
  isKnownRole?: (name: string) => boolean;
  /** The known roles, to list in that error (and to check against when isKnownRole is absent). */
  knownRoles?: readonly string[];
  /** Asks for the Ansible Vault password on a terminal (absent: never asked; see
   *  vault/ansible-password.ts for where else it comes from). */
  askAnsibleVaultPassword?: (prompt: string) => Promise<string>;
  /** Every value decrypted from Ansible Vault, as soon as it is: give it to the redactor. */
  onSecret?: (value: unknown) => void;
  /** Environment variables ($ANSIBLE_VAULT_PASSWORD_FILE); default process.env. */
  environment?: Record<string, string | undefined>;
}

const YAML_EXTENSIONS = ['.yaml', '.yml'];

export async function loadInventory(opts: LoadOptions): Promise<Inventory> {
  const absPath = opts.inventoryFile ? path.resolve(opts.root, opts.inventoryFile) : await findEnvFile(opts.root, opts.env);
  const file = displayPath(opts.root, absPath);
  let text: string;
  try {
    text = await readFile(absPath, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(`cannot read inventory: ${reason}`, { file });
  }
  const yaml = detectFormat(absPath, text) === 'yaml' ? readYamlInventory(text, file, absPath) : undefined;
  const passwordFile = yaml?.ansibleVaultPasswordFile;
  const vault = ansibleDecrypter({
    ...(passwordFile && {
      file: { path: path.resolve(path.dirname(absPath), passwordFile.name), shown: passwordFile.name, location: passwordFile.location },
    }),
    env: opts.environment ?? process.env,
    root: opts.root,
    ask: opts.askAnsibleVaultPassword,
  });
  const tree = { decrypt: vault.decrypt, onSecret: opts.onSecret ?? (() => undefined), display: (abs: string) => displayPath(opts.root, abs) };
  let raw: RawInventory;
  try {
    if (!yaml) raw = await readAnsibleTree(absPath, text, tree);
    else if (yaml.ansibleInventory) raw = await includeAnsibleInventory(yaml, yaml.ansibleInventory, tree);
    else if (yaml.ansibleInventoryScript) raw = await includeAnsibleInventory(yaml, yaml.ansibleInventoryScript, tree, { script: true });
    else raw = yaml;
  } finally {
    vault.wipe();
  }
  const sshConfigPath = userSshConfigPath();
  return resolveInventory(raw, {
    env: opts.env,
    extraVars: opts.extraVars,
    isKnownRole: opts.isKnownRole,
    knownRoles: opts.knownRoles,
    userSshConfig: await readSshConfig(sshConfigPath),
    localTarget: async (ref) => (await import('../target/registry.js')).inventoryTarget(opts.root, ref),
  });
}

async function findEnvFile(root: string, env: string): Promise<string> {
  const dir = path.join(root, 'inventories');
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch {
    // no inventories/ directory: reported below like any missing environment
  }
  const candidates = /^[\w.-]+$/.test(env) ? [...YAML_EXTENSIONS, '.ini'].map((ext) => env + ext).filter((f) => entries.includes(f)) : [];
  if (candidates.length > 1 && candidates.some((f) => f.endsWith('.ini'))) {
    throw new ConfigError(`environment "${env}" has two inventories: ${candidates.map((f) => `inventories/${f}`).join(' and ')}; keep one`);
  }
  if (candidates[0]) return path.join(dir, candidates[0]);
  const available = [...new Set(entries.filter((f) => /\.(ya?ml|ini)$/.test(f)).map((f) => f.replace(/\.(ya?ml|ini)$/, '')))].sort();
  throw new ConfigError(
    `no inventory for environment "${env}": expected inventories/${env}.yaml or inventories/${env}.ini ` + `(available: ${available.join(', ') || 'none'})`,
  );
}

export function displayPath(root: string, absPath: string): string {
  const rel = path.relative(root, absPath);
  return rel.startsWith('..') || path.isAbsolute(rel) ? absPath : rel.split(path.sep).join('/');
}

/** The hosts named by `limit` (host or group names), in inventory order; all hosts without one. */
export function selectHosts(inv: Inventory, limit?: string[]): Host[] {
  if (!limit || limit.length === 0) return inv.hosts;
  const selected = new Set<string>();
  const errors: ConfigError[] = [];
  const hostNames = inv.hosts.map((h) => h.name);
  const groupNames = inv.groups.map((g) => g.name);
  for (const item of limit) {
    if (hostNames.includes(item)) selected.add(item);
    else if (groupNames.includes(item)) {
      for (const h of inv.hosts) if (h.groups.includes(item)) selected.add(h.name);
    } else {
      errors.push(
        new ConfigError(
          `unknown host or group "${item}" in --limit${didYouMean(item, [...hostNames, ...groupNames])}; ` +
            `hosts: ${hostNames.join(', ') || 'none'}; groups: ${groupNames.join(', ')}`,
          undefined,
          { hint: `the inventory is ${inv.file}` },
        ),
      );
    }
  }
  throwIfAny(errors);
  return inv.hosts.filter((h) => selected.has(h.name));
}

/** What `keel inventory <env>` prints: resolved hosts, groups and variables, every variable
 *  value passed through `mask` (the vault masks its secrets). */
export function inventoryToJSON(inv: Inventory, mask: (value: unknown) => unknown): object {
  const masked = (vars: Vars): Vars => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, mask(v)]));
  return {
    env: inv.env,
    file: inv.file,
    vars: masked(inv.vars),
    groups: Object.fromEntries(
      inv.groups.map((g) => [
        g.name,
        {
          hosts: inv.hosts.filter((h) => h.groups.includes(g.name)).map((h) => h.name),
          children: g.children,
          roles: g.roles,
          vars: masked(g.vars),
          ...(g.serial !== undefined && { serial: g.serial }),
          ...(g.maxFailPercentage !== undefined && { max_fail_percentage: g.maxFailPercentage }),
        },
      ]),
    ),
    hosts: Object.fromEntries(
      inv.hosts.map((h) => {
        // Named instances (and instance variables) are shown as written: {role, name, vars}.
        const instances = (h.roleInstances ?? []).filter((i) => i.name !== undefined || Object.keys(i.vars).length);
        const roles = instances.length
          ? h.roleInstances!.map((i) =>
              i.name === undefined && !Object.keys(i.vars).length
                ? i.role
                : { role: i.role, ...(i.name !== undefined && { name: i.name }), vars: masked(i.vars) },
            )
          : h.roles;
        // A value from the Ansible tree keel cannot evaluate is not among the vars: said here.
        const notEvaluated = Object.fromEntries(
          (h.unevaluable ?? []).map((u) => [u.name, mask(`${formatLocation(u.location)}: ${u.expression !== undefined ? `${u.expression}: ` : ''}${u.why}`)]),
        );
        return [
          h.name,
          {
            groups: h.groups,
            roles,
            connection: connectionJSON(h.connection),
            vars: masked(h.vars),
            ...(h.unevaluable?.length && { not_evaluated: notEvaluated }),
          },
        ];
      }),
    ),
  };
}

function connectionJSON(c: Connection): object {
  return {
    address: c.address,
    port: c.port,
    user: c.user,
    keyFiles: c.keyFiles,
    agent: c.agent,
    jump: c.jump.map((j) => `${j.user}@${j.address.includes(':') ? `[${j.address}]` : j.address}:${j.port}`),
    connectTimeoutMs: c.connectTimeoutMs,
    become: c.become,
    becomeUser: c.becomeUser,
    ...(c.becomePasswordVar !== undefined && { becomePasswordVar: c.becomePasswordVar }),
    ...(c.sshConfigHost !== undefined && { sshConfigHost: c.sshConfigHost }),
    ...(c.localTarget !== undefined && { localTarget: c.localTarget, knownHostsFile: c.knownHostsFile }),
  };
}
