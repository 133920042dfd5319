// The inventory as read from a file, before resolution: what the YAML and INI readers both
// produce. Every name that refers to something else keeps its location, so resolution
// errors (unknown group, role, cycle) point at the line that wrote it.
import type { SourceLocation } from '../errors.js';
import type { Vars } from './types.js';

export interface Ref {
  name: string;
  location: SourceLocation;
}

/** Connection keys as written: undefined means "not set here". Paths are not resolved yet. */
export interface RawConnection {
  address?: string;
  port?: number;
  user?: string;
  keys?: string[];
  agent?: boolean;
  jump?: Ref[];
  become?: boolean;
  becomeUser?: string;
  becomePasswordVar?: string;
  sshConfig?: Ref;
  sshHost?: string;
  connectTimeoutSec?: number;
  /** Set by a local target (`target:`): its own known_hosts file, and its name for hints. */
  knownHostsFile?: string;
  localTarget?: string;
}

/** A role as listed in `roles:`: a name, or `{role, name, vars}` for one instance of a role
 *  used several times with different variables (see compile.ts). */
export interface RoleRef extends Ref {
  /** The instance name (`recalc` in `daemon[recalc]`); absent for a plain role name. */
  instance?: string;
  /** Variables of this instance only, layered over the host's. */
  vars?: RawVars;
}

export interface RawVars {
  values: Vars;
  locations: Record<string, SourceLocation>;
  /** Ansible INI: what Ansible reads where keel reads the text differently (keel types `true`
   *  as a boolean, Ansible's literal_eval leaves it a string): named by --explain. */
  ansibleReadsAs?: Record<string, unknown>;
}

export interface RawHost {
  name: string;
  location: SourceLocation;
  groups: Ref[];
  roles: RoleRef[];
  vars: RawVars;
  connection: RawConnection;
  /** `target: NAME`: a local target of `keel target up` fills in the connection. */
  target?: Ref;
  /** Its variables in Ansible's inventory file (connection variables included), and after
   *  reading group_vars/host_vars, every Ansible layer that reaches it (ansible-tree.ts). */
  ansibleVars?: RawVars;
  ansibleLayers?: AnsibleLayer[];
}

/** One place Ansible variables come from, in Ansible's words ("inventory group_vars/web"). */
export interface AnsibleLayer {
  label: string;
  vars: RawVars;
  /** Set on the host's own layers (its inventory line, host_vars/): what "set on the host
   *  itself" means for an ssh_config file's precedence (resolve.ts). */
  hostLevel?: boolean;
  /** Decrypted from Ansible Vault (the whole value or part of it). */
  secrets: Set<string>;
  /** Holding an `!unsafe` string: taken as written, never rendered. */
  unsafe: Set<string>;
}

export interface RawGroup {
  name: string;
  location: SourceLocation;
  roles: RoleRef[];
  vars: RawVars;
  children: Ref[];
  /** Hosts listed under the group (INI sections); YAML lists groups on the host instead. */
  hosts: Ref[];
  connection: RawConnection;
  serial?: number | string;
  maxFailPercentage?: number;
  /** Its variables in Ansible's inventory file (`[web:vars]`), and `ansible_group_priority`. */
  ansibleVars?: RawVars;
  ansiblePriority?: number;
}

export interface RawInventory {
  /** The file as shown in messages (relative to the project root when inside it). */
  file: string;
  /** Absolute path: relative paths in the inventory are resolved against its directory. */
  path: string;
  vars: RawVars;
  connection: RawConnection;
  hosts: RawHost[];
  groups: RawGroup[];
  /** INI: groups may be created by reference (`[x:children]`, `[x:vars]`), as in Ansible. */
  implicitGroups: boolean;
  /** `ansible_inventory:` of a YAML inventory, as written (see ansible-include.ts). */
  ansibleInventory?: Ref;
  /** `ansible_inventory_script:`: an executable printing the dynamic inventory protocol's JSON
   *  (see ansible-script.ts). */
  ansibleInventoryScript?: Ref;
  /** `ansible_playbook_dir:`: its group_vars/ and host_vars/ are read as a playbook's. */
  ansiblePlaybookDir?: Ref;
  /** `ansible_vault_password_file:`: the password of Vault-encrypted vars in the Ansible tree. */
  ansibleVaultPasswordFile?: Ref;
  /** The Ansible inventory file read (directly or through ansible_inventory:), as shown in
   *  messages, and its `[all:vars]` (or `all: vars:`). */
  ansibleFile?: string;
  ansibleVars?: RawVars;
  /** Where the Ansible tree's variables were read from, for --explain. */
  ansibleSources?: { inventoryDir: string; playbookDir?: string };
  /** Ansible INI (its variables may be Ansible's own: unknown ones only warn) or keel YAML. */
  format?: 'yaml' | 'ini';
  /** `known_hosts:` as written (YAML only). */
  knownHosts?: string;
}

export const emptyVars = (): RawVars => ({ values: {}, locations: {} });

/** An Ansible inventory (INI, YAML, a dynamic inventory script's JSON) as read: its hosts and
 *  groups, with group `all` (taken out of the groups by the reader) giving the inventory-wide
 *  Ansible variables. format 'ini': its unknown variables only warn, as Ansible's own may be. */
export function ansibleRawInventory(
  file: string,
  path: string,
  hosts: Map<string, RawHost>,
  groups: Map<string, RawGroup>,
  all: RawGroup | undefined,
): RawInventory {
  return {
    file,
    path,
    vars: emptyVars(),
    connection: {},
    hosts: [...hosts.values()],
    groups: [...groups.values()],
    implicitGroups: true,
    format: 'ini',
    ansibleFile: file,
    ansibleVars: all?.ansibleVars ?? emptyVars(),
  };
}
