// Ansible's connection variables, as keel's connection: once a host's Ansible variables are
// merged (ansible_user from group_vars/all, ansible_host from its inventory line...), the
// winners become its address, port, user, key, become settings and jump host, and leave its
// variables. Only the jump host is taken from ansible_ssh_common_args/extra_args: their other
// ssh options are not supported and are ignored.
import { ConfigError, type SourceLocation } from '../errors.js';
import { proxyJumpOf } from './ini.js';
import { hasJinja } from './jinja.js';
import type { RawConnection } from './raw.js';
import type { Vars } from './types.js';

// In the order they are applied: where both spellings are set, the ssh_ one wins, as in
// Ansible's ssh connection plugin (the last variable of an option's list that is set).
const ALIASES: Record<string, keyof RawConnection> = {
  ansible_host: 'address',
  ansible_ssh_host: 'address',
  ansible_port: 'port',
  ansible_ssh_port: 'port',
  ansible_user: 'user',
  ansible_ssh_user: 'user',
  ansible_private_key_file: 'keys',
  ansible_ssh_private_key_file: 'keys',
  ansible_become: 'become',
  ansible_become_user: 'becomeUser',
  ansible_ssh_common_args: 'jump',
  ansible_ssh_extra_args: 'jump',
};

/** The sudo password variables: kept as variables, named as the one keel reads for sudo. */
const BECOME_PASSWORD = ['ansible_become_password', 'ansible_become_pass'];

export const isConnectionVar = (name: string): boolean => name in ALIASES;

/** The keel setting an Ansible connection variable becomes (for messages and --explain). */
export const connectionField = (name: string): string | undefined => {
  const f = ALIASES[name];
  return f === 'keys' ? 'key' : f === 'becomeUser' ? 'become_user' : f;
};

/** Throws where a connection variable's value cannot be what it must be (a port, a boolean).
 *  A value with Jinja is left to host-vars.ts, which names what keel cannot evaluate. */
export function checkConnectionVar(key: string, value: unknown, location: SourceLocation): void {
  if (isConnectionVar(key) && !hasJinja(value)) applyConnectionVar({}, key, value, location);
}

/** The connection the winning connection variables make. */
export function connectionFromVars(values: Vars, locations: Record<string, SourceLocation>): RawConnection {
  const conn: RawConnection = {};
  for (const key of Object.keys(ALIASES)) if (key in values) applyConnectionVar(conn, key, values[key], locations[key]!);
  const pw = BECOME_PASSWORD.find((k) => k in values);
  if (pw) conn.becomePasswordVar = pw;
  return conn;
}

function applyConnectionVar(conn: RawConnection, key: string, value: unknown, location: SourceLocation): void {
  const text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
  if (text === undefined && ALIASES[key] !== 'become') {
    throw new ConfigError(`"${key}" must be a single value, got ${Array.isArray(value) ? 'a list' : value === null ? 'nothing' : 'a mapping'}`, location);
  }
  switch (ALIASES[key]) {
    case 'address':
      conn.address = text;
      return;
    case 'port': {
      const port = Number(text);
      if (!/^[0-9]+$/.test(text!) || port < 1 || port > 65535) {
        throw new ConfigError(`"${key}" must be an integer between 1 and 65535, got ${JSON.stringify(value)}`, location);
      }
      conn.port = port;
      return;
    }
    case 'user':
      conn.user = text;
      return;
    case 'keys':
      conn.keys = [text!];
      return;
    case 'become':
      conn.become = ansibleBoolean(key, value, location);
      return;
    case 'becomeUser':
      conn.becomeUser = text;
      return;
    case 'jump': {
      const jumps = proxyJumpOf(text!);
      if (jumps.length > 0) conn.jump = jumps.map((name) => ({ name, location }));
      return;
    }
  }
}

/** Ansible's boolean filter: yes/on/true/1/y/t and their opposites, any case. */
function ansibleBoolean(key: string, value: unknown, location: SourceLocation): boolean {
  if (typeof value === 'boolean') return value;
  const v = String(value).toLowerCase();
  if (['yes', 'on', 'true', '1', 'y', 't'].includes(v)) return true;
  if (['no', 'off', 'false', '0', 'n', 'f'].includes(v)) return false;
  throw new ConfigError(`"${key}" must be true or false, got ${JSON.stringify(value)}`, location);
}
