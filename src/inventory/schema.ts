// The JSON Schema of keel's YAML inventory, and the translation of ajv's errors into
// messages a user can act on. Each field carries a `description` that says in plain words
// what is expected; messages are built from it ("port" must be an integer between 1 and
// 65535, got "twenty-two") rather than from ajv's wording.
import type { ErrorObject, SchemaObject } from 'ajv';
import { validator } from '../validators/index.js';
import { ConfigError, type SourceLocation } from '../errors.js';
import { closest } from '../suggest.js';

const name = (description: string): SchemaObject => ({ type: 'string', minLength: 1, description });
const nameList = (description: string): SchemaObject => ({
  type: 'array',
  items: { type: 'string', minLength: 1 },
  description,
});
const oneOrMany = (description: string): SchemaObject => ({
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'array', items: { type: 'string', minLength: 1 } },
  ],
  description,
});
const vars: SchemaObject = { type: ['object', 'null'], description: 'a mapping of variable names to values' };

/** `roles:` items: a role name, or one named instance of a role with its own variables. */
const roleList: SchemaObject = {
  type: 'array',
  items: {
    anyOf: [
      { type: 'string', minLength: 1 },
      {
        type: 'object',
        additionalProperties: false,
        required: ['role'],
        properties: {
          role: name('a role name'),
          name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'an instance name (letters, digits, _ . -)' },
          vars,
        },
      },
    ],
    description: 'a role name, or {role: NAME, name: INSTANCE, vars: {...}} for one instance of a role used several times',
  },
  description: 'a list of role names',
};

/** Connection keys shared by the top-level `connection`, groups' `connection` and hosts. */
const connectionProperties: Record<string, SchemaObject> = {
  port: { type: 'integer', minimum: 1, maximum: 65535, description: 'an integer between 1 and 65535' },
  user: name('a user name'),
  key: oneOrMany('a private key file, or a list of them'),
  agent: { type: 'boolean', description: 'true or false' },
  jump: oneOrMany('a host name of this inventory or "user@address:port", or a list of them'),
  become: { type: 'boolean', description: 'true or false' },
  become_user: name('a user name'),
  become_password_var: {
    type: 'string',
    pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
    description: 'a variable name (letters, digits and _)',
  },
  connect_timeout: { type: 'number', exclusiveMinimum: 0, description: 'a number of seconds greater than 0' },
};

const connection: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: connectionProperties,
  description: 'a mapping of connection settings',
};

const host: SchemaObject = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    address: name('a host name or IP address'),
    ...connectionProperties,
    groups: nameList('a list of group names'),
    roles: roleList,
    vars,
    ssh_config: name('the path of an OpenSSH config file'),
    ssh_host: name('a Host alias of the OpenSSH config file'),
    target: name('the name of a local target (keel target up NAME)'),
  },
  description: 'a mapping of host settings',
};

const group: SchemaObject = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    roles: roleList,
    vars,
    children: nameList('a list of group names'),
    connection,
    serial: {
      anyOf: [
        { type: 'integer', minimum: 1 },
        { type: 'string', pattern: '^[1-9][0-9]*%$' },
      ],
      description: 'a number of hosts (at least 1) or a percentage like "30%"',
    },
    max_fail_percentage: { type: 'number', minimum: 0, maximum: 100, description: 'a percentage between 0 and 100' },
  },
  description: 'a mapping of group settings',
};

export const inventorySchema: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    known_hosts: { type: 'string', minLength: 1, description: 'the known_hosts file to check host keys against (relative to this file)' },
    ansible_inventory: {
      type: 'string',
      minLength: 1,
      description:
        'an Ansible inventory (INI or YAML) whose hosts, groups and variables this file takes, ' +
        'group_vars/ and host_vars/ beside it included (relative to this file)',
    },
    ansible_inventory_script: {
      type: 'string',
      minLength: 1,
      description:
        "an executable printing Ansible's dynamic inventory JSON (`--list`: groups, hosts, _meta.hostvars), such as a cloud " +
        'inventory script, whose hosts, groups and variables this file takes, group_vars/ and host_vars/ beside it included (relative to this file)',
    },
    ansible_playbook_dir: {
      type: 'string',
      minLength: 1,
      description:
        "the directory of the team's Ansible playbook, whose group_vars/ and host_vars/ are read as Ansible reads a playbook's (relative to this file)",
    },
    ansible_vault_password_file: {
      type: 'string',
      minLength: 1,
      description: 'a file holding the Ansible Vault password of encrypted vars in the Ansible tree (relative to this file)',
    },
    vars,
    connection,
    hosts: { type: 'object', additionalProperties: host, description: 'a mapping of host names to host settings' },
    groups: { type: ['object', 'null'], additionalProperties: group, description: 'a mapping of group names to group settings' },
  },
  description: 'a mapping with "hosts", "ansible_inventory" or "ansible_inventory_script" (and optionally "vars", "connection", "groups", "known_hosts")',
};

/** What the error mapper needs from the parsed document. */
export interface NodeLocator {
  /** Location of the value at `path` (or of its nearest existing ancestor). */
  valueAt(path: string[]): SourceLocation;
  /** Location of the key of the mapping entry at `path`. */
  keyAt(path: string[]): SourceLocation;
}

export function validateInventoryData(data: unknown, locator: NodeLocator): ConfigError[] {
  const validateInventory = validator('inventory', inventorySchema);
  if (validateInventory(data)) return [];
  const errors = validateInventory.errors ?? [];
  // An anyOf error stands for its branches' errors: report it alone, in its own words; unless
  // the value has the type of one branch and only that branch's details are wrong (an unknown
  // key in a `{role: ...}` entry): those details say more.
  const inside = (e: ErrorObject, a: ErrorObject) => e.schemaPath.startsWith(a.schemaPath + '/') && (e.instancePath + '/').startsWith(a.instancePath + '/');
  const alternatives = errors.filter((e) => e.keyword === 'anyOf');
  const isMapping = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const detailed = new Set(alternatives.filter((a) => isMapping(a.data) && errors.some((e) => inside(e, a) && e.keyword !== 'type')));
  const kept = errors.filter((e) => {
    if (e.keyword === 'anyOf') return !detailed.has(e);
    const a = alternatives.find((x) => inside(e, x));
    return a !== undefined && detailed.has(a) ? e.keyword !== 'type' : a === undefined;
  });
  return kept.map((e) => toConfigError(e, locator));
}

function toConfigError(e: ErrorObject, locator: NodeLocator): ConfigError {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (e.keyword === 'additionalProperties') {
    const key = String(e.params['additionalProperty']);
    const known = Object.keys((e.parentSchema?.['properties'] as object | undefined) ?? {});
    const suggestion = closest(key, known);
    const advice = suggestion ? `did you mean "${suggestion}"?` : `expected one of: ${known.join(', ')}`;
    return new ConfigError(`unknown key "${key}" in ${describeObject(path)} (${advice})`, locator.keyAt([...path, key]));
  }
  if (e.keyword === 'required') {
    return new ConfigError(`missing key "${String(e.params['missingProperty'])}" in ${describeObject(path)}`, locator.valueAt(path));
  }
  const expected = (e.parentSchema?.['description'] as string | undefined) ?? fallbackExpectation(e);
  const subject = path.length === 0 ? 'the inventory' : `"${label(path)}"`;
  return new ConfigError(`${subject} must be ${expected}, got ${describeValue(e.data)}`, locator.valueAt(path));
}

function describeObject(path: string[]): string {
  const [top, name, sub, index] = path;
  if (top === undefined) return 'the inventory';
  if (sub === 'roles' && index !== undefined) return `roles[${index}] of ${top === 'hosts' ? 'host' : 'group'} "${name}"`;
  if (top === 'hosts' && name !== undefined) return `host "${name}"`;
  if (top === 'groups' && name !== undefined) return sub === 'connection' ? `the connection of group "${name}"` : `group "${name}"`;
  return `"${top}"`;
}

/** `groups[0]` for list items, else the key itself. */
function label(path: string[]): string {
  const last = path[path.length - 1]!;
  if (/^\d+$/.test(last) && path.length > 1) return `${path[path.length - 2]}[${last}]`;
  return last;
}

function fallbackExpectation(e: ErrorObject): string {
  if (e.keyword === 'type') {
    const words: Record<string, string> = {
      object: 'a mapping',
      array: 'a list',
      string: 'a string',
      integer: 'an integer',
      number: 'a number',
      boolean: 'true or false',
      null: 'empty',
    };
    return String(e.params['type'])
      .split(',')
      .map((t) => words[t] ?? t)
      .join(' or ');
  }
  if (e.keyword === 'minLength') return 'a non-empty string';
  return e.message ?? 'valid';
}

export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
