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
  /** The INI file included that way, as shown in messages: its variables only warn. */
  ansibleFile?: string;
  /** Ansible INI (its variables may be Ansible's own: unknown ones only warn) or keel YAML. */
  format?: 'yaml' | 'ini';
  /** `known_hosts:` as written (YAML only). */
  knownHosts?: string;
}

export const emptyVars = (): RawVars => ({ values: {}, locations: {} });
