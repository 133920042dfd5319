// The resolved inventory: what the rest of keel sees after loading and validation,
// whatever the source format (keel YAML, Ansible INI, OpenSSH config for addresses).
import type { SourceLocation } from '../errors.js';

export type Vars = Record<string, unknown>;

/** How to reach a host. Mirrors the inventory keys; every field resolved to a value. */
export interface Connection {
  address: string;
  port: number;
  user: string;
  /** Private key files to try, in order (~ expanded). Empty: agent and default keys. */
  keyFiles: string[];
  /** Use ssh-agent ($SSH_AUTH_SOCK) if present. */
  agent: boolean;
  /** Jump host(s), outermost first (ProxyJump). */
  jump: Connection[];
  connectTimeoutMs: number;
  /** Run the remote script through sudo (become). */
  become: boolean;
  becomeUser: string;
  /** Name of the variable (usually from the vault) holding the sudo password, if any. */
  becomePasswordVar?: string;
  /** Alias looked up in an OpenSSH config file, when the inventory names one. */
  sshConfigHost?: string;
  /** known_hosts for this host instead of the inventory's (a local target has its own). */
  knownHostsFile?: string;
  /** The local target (`target:`) this host is, for hints like `keel target up web1`. */
  localTarget?: string;
}

/** One use of a role on a host. A role listed by name is one instance without a name. */
export interface RoleInstance {
  role: string;
  /** `recalc` for `{role: daemon, name: recalc}`: ids become `daemon[recalc]/...`. */
  name?: string;
  /** The instance's own variables: above the host's, below -e. */
  vars: Vars;
  varLocations: Record<string, SourceLocation>;
  location: SourceLocation;
}

/** Where a variable is set in the inventory, and the hosts that definition reaches (checked
 *  for typos: a definition no role of those hosts declares or uses is refused). */
export interface VarDefinition {
  name: string;
  location: SourceLocation;
  /** Names of the hosts it applies to. */
  hosts: string[];
  /** Set for a role instance's `vars`: only that instance sees it. */
  instance?: { role: string; name?: string };
  /** Written in an Ansible INI file (ansible_inventory:): it may be Ansible's own, so it only warns. */
  fromAnsible?: boolean;
}

export interface Host {
  name: string;
  /** Groups the host belongs to, directly or through children, outermost ancestors first. */
  groups: string[];
  /** Roles to apply, in order, de-duplicated (from its groups, then its own). */
  roles: string[];
  /** Every use of a role, in order (a role used with several names appears several times).
   *  Absent: one unnamed instance per entry of `roles`. */
  roleInstances?: RoleInstance[];
  connection: Connection;
  /** Merged variables: env vars < group vars (ancestors first) < host vars < CLI vars. */
  vars: Vars;
  /** Where the host is defined, for error messages. */
  location: SourceLocation;
  /** Where the winning value of each top-level variable was defined (for validation errors). */
  varLocations?: Record<string, SourceLocation>;
  /** Variables given with -e (and Ansible's `!unsafe` values): taken as they are, never
   *  rendered as templates. */
  literalVars?: string[];
  /** Every place each variable is set, lowest precedence first: the last one is its value. */
  varSources?: Record<string, VarSource[]>;
  /** Variables from an Ansible tree whose value keel cannot evaluate: not in `vars`. */
  unevaluable?: Unevaluable[];
  /** Variables whose value was decrypted from Ansible Vault (masked wherever keel prints). */
  secretVars?: string[];
  /** The Ansible connection variables (ansible_host...) that made `connection`, as set. */
  connectionVars?: Record<string, { value: unknown; source: VarSource }>;
}

/** One place a variable is set, in keel's or Ansible's words. */
export interface VarSource {
  /** "inventory group_vars/web", "playbook host_vars/web1", "keel inventory (group web)", "-e". */
  label: string;
  location: SourceLocation;
  /** Decrypted from Ansible Vault. */
  secret?: boolean;
  /** Ansible INI: Ansible's literal_eval reads the text as this value, keel as another. */
  ansibleReadsAs?: { value: unknown };
}

/** A value from an Ansible tree that keel cannot evaluate (Jinja keel's templates do not have). */
export interface Unevaluable {
  name: string;
  location: SourceLocation;
  /** The part keel cannot evaluate, as written; absent for a secret (never shown). */
  expression?: string;
  why: string;
  /** What to write in keel instead, where there is an equivalent. */
  keel?: string;
  /** A connection variable (ansible_host...): keel needs it whatever the roles read. */
  connection?: boolean;
}

export interface Group {
  name: string;
  roles: string[];
  vars: Vars;
  children: string[];
  /** Hosts run in batches of this size (or percentage string like "30%"). */
  serial?: number | string;
  /** Abort the remaining batches when more than this percentage of hosts failed. */
  maxFailPercentage?: number;
  location: SourceLocation;
}

export interface Inventory {
  env: string;
  file: string;
  vars: Vars;
  hosts: Host[];
  groups: Group[];
  /** known_hosts file named by the inventory (`known_hosts:`), resolved; else the default. */
  knownHostsFile?: string;
  /** Every variable definition (env, group, host, role instance, -e), for the typo check. */
  varDefinitions?: VarDefinition[];
  /** An Ansible INI inventory carries Ansible-only variables: unknown ones only warn. */
  format?: 'yaml' | 'ini';
  /** The Ansible tree read (ansible_inventory:, or an INI inventory), for --explain. */
  ansible?: { file: string; inventoryDir: string; playbookDir?: string };
}
