// The controller pipeline every command that acts on hosts starts with: inventory -> vault ->
// roles -> compile. Everything here can fail before a host is touched (exit 1), and does so
// with every problem it found, each with its file and line.
import { existsSync } from 'node:fs';
import { ConfigError, configErrorsOf, throwIfAny } from '../errors.js';
import { unique } from '../lists.js';
import { readExtraVars } from '../inventory/extra-vars.js';
import { loadInventory, selectHosts } from '../inventory/load.js';
import type { Connection, Host, Inventory, Vars } from '../inventory/types.js';
import { SHORT_SECRET, type Redactor } from '../report/redact.js';
import { loadSecrets, sweepStalePlaintext } from '../vault/index.js';
import { PlanSharing, SHARE_FROM_HOSTS } from './plan-sharing.js';
import { SectionCache } from './compile-reuse.js';
import type { HostPlan } from './plan.js';
import { RoleLibrary } from './roles.js';
import { compileForAnyPlatform } from './variants.js';
import { roleInstancesOf, type GroupMember } from './compile.js';
import { ttyPrompt } from '../vault/prompt.js';
import { checkInventoryVariables, type VarCheck } from './var-check.js';
import { timed, timedAsync } from '../timing.js';

export interface RunRequest {
  /** Project root: inventories/, roles/, secrets/. */
  root: string;
  env: string;
  /** --inventory FILE instead of inventories/<env>.yaml|.ini. */
  inventoryFile?: string;
  /** -e items as typed: `key=value` or `@file.yaml`. */
  extraVars?: string[];
  limit?: string[];
  tags?: string[];
  /** Prompts allowed (the vault passphrase). */
  interactive: boolean;
  /** Every decrypted secret is added to it before anything is printed. */
  redactor: Redactor;
  /** Something the user should read before the run starts (printed on stderr). */
  notice?: (message: string) => void;
  /** The hosts of the run are known (those whose key files exist): before the inventory's
   *  variables are checked, the vault is opened and the roles are compiled (provision connects
   *  to them meanwhile: early-connections.ts). */
  onHosts?: (hosts: Host[], inventory: Inventory) => void;
}

export interface PreparedRun {
  inventory: Inventory;
  library: RoleLibrary;
  hosts: Host[];
  plans: HostPlan[];
  secrets: Vars;
}

/** Everything that can fail before a host is touched: inventory, vault, roles, templates. */
export async function prepareRun(req: RunRequest): Promise<PreparedRun> {
  // Plaintext a killed `keel secrets edit` left behind: gone before anything else happens.
  for (const m of timed('vault', sweepStalePlaintext)) req.notice?.(m);
  const { library, inventory, varCheck } = await timedAsync('inventory', () => loadChecked(req));
  for (const w of varCheck.warnings) req.notice?.(w);
  const hosts = timed('inventory', () => selectHosts(inventory, req.limit));
  timed('inventory', () => checkKeyFiles(hosts));
  const secrets = await timedAsync('vault', async () =>
    needsSecrets(hosts, library) ? ((await loadSecrets(req.root, req.env, { interactive: req.interactive, notice: req.notice })) ?? {}) : {},
  );
  req.redactor.add([secrets]);
  for (const w of shortSecrets(secrets, req.env)) req.notice?.(w);
  const errors: ConfigError[] = [];
  const plans: HostPlan[] = [];
  const groupMembers = membersOf(inventory);
  // Sharing saves memory a fleet needs (about 160 KB per host for 200 resources) and costs
  // a comparison of every resource (2 ms per host for 400): below SHARE_FROM_HOSTS hosts the
  // memory is a few MB and the time is felt, so each host keeps its own plan.
  const sharing = hosts.length >= SHARE_FROM_HOSTS ? new PlanSharing() : null;
  // One host has no other host to reuse a section from: no recording then.
  const sections = hosts.length > 1 ? new SectionCache(hosts.map(roleInstancesOf)) : undefined;
  for (const host of hosts) {
    try {
      const opts = { env: req.env, secrets, tags: req.tags, root: req.root, groupMembers, sections };
      plans.push(
        timed('render', () => {
          const plan = compileForAnyPlatform(host, library, opts);
          return sharing ? sharing.share(plan) : plan;
        }),
      );
    } catch (err) {
      errors.push(...configErrorsOf(err).map((e) => prefixHost(e, host.name)));
    }
    // Early connections (onHosts) go on with their handshakes between hosts.
    if (req.onHosts) await new Promise((r) => setImmediate(r));
  }
  // compile's own check of role-named variables says the same as the typo check: once.
  const typos = new Set(varCheck.errors.map((e) => e.message));
  errors.push(...varCheck.errors);
  const all = dedupe(errors.filter((e) => !typos.has(e.message.replace(/ \(host [^)]+\)$/, '')) || varCheck.errors.includes(e)));
  throwIfAny(all);
  return { inventory, library, hosts, plans, secrets };
}

/** The inventory with the roles it names, and the check of its variables against them (a
 *  variable nothing declares or reads is a typo: refused in keel's YAML, warned about when it
 *  comes from Ansible; an Ansible value keel cannot evaluate is refused where a role reads it).
 *  Values decrypted from an Ansible tree reach the redactor before anything else is printed. */
export async function loadChecked(req: RunRequest): Promise<{ library: RoleLibrary; inventory: Inventory; varCheck: VarCheck }> {
  const library = RoleLibrary.forProject(req.root);
  const inventory = await loadInventory({
    root: req.root,
    env: req.env,
    inventoryFile: req.inventoryFile,
    extraVars: readExtraVars(req.extraVars ?? [], req.root),
    isKnownRole: (n) => library.has(n),
    knownRoles: library.names(),
    onSecret: (v) => req.redactor.add([v]),
    ...(req.interactive && { askAnsibleVaultPassword: (q: string) => ttyPrompt(q, { hidden: true }) }),
  });
  if (req.onHosts) announceHosts(req, inventory);
  return { library, inventory, varCheck: checkInventoryVariables(inventory, library) };
}

/** onHosts as soon as the inventory is read: none when --limit is wrong, and not the hosts
 *  whose key files are missing (the checks that follow say so, as before). */
function announceHosts(req: RunRequest, inventory: Inventory): void {
  let hosts: Host[];
  try {
    hosts = selectHosts(inventory, req.limit);
  } catch {
    return;
  }
  const keysExist = (h: Host) => [...h.connection.jump, h.connection].every((c) => c.keyFiles.every((f) => existsSync(f)));
  req.onHosts!(hosts.filter(keysExist), inventory);
}

/**
 * Decrypting the vault costs a passphrase's scrypt (about a second): only when a host's
 * variables, its roles' files or its sudo password can use a secret.
 */
function needsSecrets(hosts: Host[], library: RoleLibrary): boolean {
  const roles = new Set(hosts.flatMap((h) => h.roles));
  if ([...roles].some((r) => library.has(r) && library.mentions(r, 'secrets'))) return true;
  return hosts.some((h) => {
    if (JSON.stringify(h.vars).includes('secrets')) return true;
    const c = h.connection;
    return c.become && c.user !== c.becomeUser && h.vars[c.becomePasswordVar ?? 'become_password'] === undefined;
  });
}

/** Every group of the whole inventory (--limit aside: a load balancer's backends are the
 *  group's hosts whichever ones this run touches) with its hosts. A host's private_address is
 *  read as written: it must be a plain address, since other hosts' roles use it. */
function membersOf(inv: Inventory): Record<string, GroupMember[]> {
  const errors: ConfigError[] = [];
  const member = (h: Host): GroupMember => {
    const p = h.vars.private_address;
    if (p !== undefined && (typeof p !== 'string' || p.includes('{{') || !/^[A-Za-z0-9.:\[\]_-]+$/.test(p))) {
      errors.push(
        new ConfigError(`host ${h.name}: private_address must be a plain host name or IP address, got ${JSON.stringify(p)}`, h.varLocations?.private_address, {
          hint: "other hosts' roles read it (role lb's backends): write the address itself",
        }),
      );
    }
    return { name: h.name, address: h.connection.address, private_address: typeof p === 'string' && p ? p : h.name };
  };
  const out = Object.fromEntries(inv.groups.map((g) => [g.name, inv.hosts.filter((h) => h.groups.includes(g.name)).map(member)]));
  throwIfAny(unique(errors, (e) => e.message));
  return out;
}

/** A key file named in the inventory must exist: say so now, not as ENOENT at connect time. */
function checkKeyFiles(hosts: Host[]): void {
  const errors: ConfigError[] = [];
  const seen = new Set<string>();
  for (const host of hosts) {
    const hops: Connection[] = [...host.connection.jump, host.connection];
    for (const file of hops.flatMap((c) => c.keyFiles)) {
      if (seen.has(file) || existsSync(file)) continue;
      seen.add(file);
      errors.push(
        new ConfigError(`host ${host.name}: key file ${file} does not exist`, host.location, {
          hint: 'fix the path in the inventory (relative paths are relative to the inventory file), or create the key with ssh-keygen',
        }),
      );
    }
  }
  throwIfAny(errors);
}

function prefixHost(e: ConfigError, host: string): ConfigError {
  return e.message.includes(host) ? e : new ConfigError(`${e.message} (host ${host})`, undefined, { cause: e, hint: e.hint });
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  return unique(errors, (e) => e.message.replace(/ \(host [^)]+\)$/, ''));
}

/** Vault values too short to mask everywhere (redact.ts masks them only as whole words): by
 *  name, never by value. */
function shortSecrets(secrets: Vars, env: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'string' && v.length > 0 && v.length < SHORT_SECRET) {
      out.push(
        `warning: the vault of ${env} has "${path}" of ${v.length} characters: keel masks it in output only where it stands as a whole word ` +
          `(a shorter value than ${SHORT_SECRET} characters could hide in ordinary words); a longer value is safer (keel secrets set ${env} ${path})`,
      );
    } else if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
  };
  walk(secrets, '');
  return out;
}
