// Reads keel's YAML inventory format into a RawInventory, keeping the line and column of
// every node so that schema and resolution errors point into the file.
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { ConfigError, throwIfAny, type SourceLocation } from '../errors.js';
import { emptyVars, type RawConnection, type RawInventory, type RawVars, type Ref, type RoleRef } from './raw.js';
import { validateInventoryData, type NodeLocator } from './schema.js';

class YamlLocator implements NodeLocator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    readonly file: string,
  ) {}

  at(offset: number | undefined): SourceLocation {
    if (offset === undefined) return { file: this.file };
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  valueAt(path: string[]): SourceLocation {
    let node: unknown = this.doc.contents;
    let fallback = this.at(this.doc.contents?.range?.[0] ?? 0);
    for (const segment of path) {
      const pair = this.pairOf(node, segment);
      if (pair) {
        fallback = this.at((pair.key as Node | null)?.range?.[0]);
        node = pair.value;
        continue;
      }
      const item = isSeq(this.resolve(node)) ? (this.resolve(node) as { items: unknown[] }).items[Number(segment)] : undefined;
      if (item === undefined) return fallback;
      node = item;
    }
    const resolved = this.resolve(node) as Node | null;
    // `web1:` with nothing after it has no value node worth pointing at: use the key.
    if (!resolved?.range || (isScalar(resolved) && resolved.value === null)) return fallback;
    return this.at(resolved.range[0]);
  }

  keyAt(path: string[]): SourceLocation {
    let node: unknown = this.doc.contents;
    for (const segment of path.slice(0, -1)) {
      const pair = this.pairOf(node, segment);
      node = pair ? pair.value : isSeq(this.resolve(node)) ? (this.resolve(node) as { items: unknown[] }).items[Number(segment)] : undefined;
    }
    const pair = this.pairOf(node, path[path.length - 1]!);
    return pair ? this.at((pair.key as Node | null)?.range?.[0]) : this.valueAt(path.slice(0, -1));
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** The last pair with that key: with duplicates, the later value is the one that counts. */
  private pairOf(node: unknown, key: string): Pair | undefined {
    const map = this.resolve(node);
    if (!isMap(map)) return undefined;
    const pairs = map.items.filter((p) => isPair(p) && keyText(p.key) === key);
    return pairs[pairs.length - 1];
  }
}

function keyText(key: unknown): string | undefined {
  return isScalar(key) ? String(key.value) : undefined;
}

/** YAML duplicate keys: the parser would only say "Map keys must be unique"; say which host. */
function duplicateKeyErrors(doc: Document, locator: YamlLocator): ConfigError[] {
  const errors: ConfigError[] = [];
  const walk = (node: unknown, path: string[]): void => {
    if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, String(i)]));
    if (!isMap(node)) return;
    const first = new Map<string, SourceLocation>();
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (key === undefined) continue;
      const here = locator.at((pair.key as Node).range?.[0]);
      const previous = first.get(key);
      if (previous) {
        const what = path.length === 1 && path[0] === 'hosts' ? 'host' : path.length === 1 && path[0] === 'groups' ? 'group' : 'key';
        errors.push(new ConfigError(`duplicate ${what} "${key}" (first defined at line ${previous.line})`, here));
      } else first.set(key, here);
      walk(pair.value, [...path, key]);
    }
  };
  walk(doc.contents, []);
  return errors;
}

/** Parses and validates; throws ConfigError (one problem) or ConfigErrors (several). */
export function readYamlInventory(text: string, file: string, absPath: string): RawInventory {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    throwAll(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const message = e.message.replace(/ at line \d+, column \d+[\s\S]*$/, '');
        return new ConfigError(`YAML syntax error: ${message}`, { file, line: pos?.line, column: pos?.col });
      }),
    );
  }
  const locator = new YamlLocator(doc, lines, file);
  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  const ansibleYaml = data && typeof data === 'object' && 'all' in data && !('hosts' in data);
  const ansible = (d: unknown) => !!d && typeof d === 'object' && ('ansible_inventory' in d || 'ansible_inventory_script' in d);
  const noHosts =
    data && typeof data === 'object' && !('hosts' in data) && !ansible(data)
      ? [
          new ConfigError(
            'missing key "hosts" in the inventory (or "ansible_inventory": an Ansible INI file to take them from; ' +
              'or "ansible_inventory_script": a dynamic inventory script)',
            locator.valueAt([]),
            ansibleYaml ? { hint: `${file} looks like an Ansible YAML inventory: name it from a keel inventory (ansible_inventory: ${file})` } : undefined,
          ),
        ]
      : [];
  const needsAnsible = (['ansible_playbook_dir', 'ansible_vault_password_file'] as const).filter(
    (k) => data && typeof data === 'object' && k in data && !ansible(data),
  );
  noHosts.push(...needsAnsible.map((k) => new ConfigError(`"${k}" needs "ansible_inventory" (the Ansible inventory it goes with)`, locator.keyAt([k]))));
  if (data && typeof data === 'object' && 'ansible_inventory' in data && 'ansible_inventory_script' in data) {
    noHosts.push(
      new ConfigError('"ansible_inventory" and "ansible_inventory_script" together: name one Ansible inventory', locator.keyAt(['ansible_inventory_script'])),
    );
  }
  throwAll([...duplicateKeyErrors(doc, locator), ...validateInventoryData(data, locator), ...noHosts]);
  return buildRaw(data as YamlInventory, locator, absPath);
}

/** Throws the errors, if any, in the order of the file: one alone, several together. */
export function throwAll(errors: ConfigError[]): void {
  const key = (e: ConfigError) => [e.location?.line ?? 0, e.location?.column ?? 0] as const;
  throwIfAny([...errors].sort((a, b) => key(a)[0] - key(b)[0] || key(a)[1] - key(b)[1]));
}

// The shape the schema guarantees.
type Obj = Record<string, unknown>;
interface YamlInventory {
  vars?: Obj | null;
  connection?: Obj;
  hosts?: Record<string, Obj | null>;
  groups?: Record<string, Obj | null> | null;
  known_hosts?: string;
  ansible_inventory?: string;
  ansible_inventory_script?: string;
  ansible_playbook_dir?: string;
  ansible_vault_password_file?: string;
}

function buildRaw(data: YamlInventory, loc: YamlLocator, absPath: string): RawInventory {
  const refs = (value: unknown, path: string[]): Ref[] => {
    if (value === undefined) return [];
    if (typeof value === 'string') return [{ name: value, location: loc.valueAt(path) }];
    return (value as string[]).map((name, i) => ({ name, location: loc.valueAt([...path, String(i)]) }));
  };
  const rawVars = (value: unknown, path: string[]): RawVars => {
    const out = emptyVars();
    for (const [k, v] of Object.entries((value as Obj | null | undefined) ?? {})) {
      out.values[k] = v;
      out.locations[k] = loc.keyAt([...path, k]);
    }
    return out;
  };
  const roleRefs = (value: unknown, path: string[]): RoleRef[] =>
    ((value as unknown[] | undefined) ?? []).map((item, i): RoleRef => {
      const at = [...path, String(i)];
      if (typeof item === 'string') return { name: item, location: loc.valueAt(at) };
      const o = item as Obj;
      return {
        name: o['role'] as string,
        location: loc.valueAt([...at, 'role']),
        ...(o['name'] !== undefined && { instance: String(o['name']) }),
        vars: rawVars(o['vars'], [...at, 'vars']),
      };
    });
  const connection = (o: Obj, path: string[]): RawConnection => ({
    address: o['address'] as string | undefined,
    port: o['port'] as number | undefined,
    user: o['user'] as string | undefined,
    keys: o['key'] === undefined ? undefined : ([] as string[]).concat(o['key'] as string | string[]),
    agent: o['agent'] as boolean | undefined,
    jump: o['jump'] === undefined ? undefined : refs(o['jump'], [...path, 'jump']),
    become: o['become'] as boolean | undefined,
    becomeUser: o['become_user'] as string | undefined,
    becomePasswordVar: o['become_password_var'] as string | undefined,
    sshConfig: o['ssh_config'] === undefined ? undefined : refs(o['ssh_config'], [...path, 'ssh_config'])[0],
    sshHost: o['ssh_host'] as string | undefined,
    connectTimeoutSec: o['connect_timeout'] as number | undefined,
  });

  return {
    file: loc.file,
    path: absPath,
    vars: rawVars(data.vars, ['vars']),
    connection: connection(data.connection ?? {}, ['connection']),
    hosts: Object.entries(data.hosts ?? {}).map(([name, h]) => {
      const path = ['hosts', name];
      return {
        name,
        location: loc.keyAt(path),
        groups: refs(h?.['groups'], [...path, 'groups']),
        roles: roleRefs(h?.['roles'], [...path, 'roles']),
        vars: rawVars(h?.['vars'], [...path, 'vars']),
        connection: connection(h ?? {}, path),
        target: h?.['target'] === undefined ? undefined : refs(h['target'], [...path, 'target'])[0],
      };
    }),
    groups: Object.entries(data.groups ?? {}).map(([name, g]) => {
      const path = ['groups', name];
      return {
        name,
        location: loc.keyAt(path),
        roles: roleRefs(g?.['roles'], [...path, 'roles']),
        vars: rawVars(g?.['vars'], [...path, 'vars']),
        children: refs(g?.['children'], [...path, 'children']),
        hosts: [],
        connection: connection((g?.['connection'] as Obj | undefined) ?? {}, [...path, 'connection']),
        serial: g?.['serial'] as number | string | undefined,
        maxFailPercentage: g?.['max_fail_percentage'] as number | undefined,
      };
    }),
    implicitGroups: false,
    knownHosts: data.known_hosts,
    ...(data.ansible_inventory !== undefined && { ansibleInventory: refs(data.ansible_inventory, ['ansible_inventory'])[0] }),
    ...(data.ansible_inventory_script !== undefined && {
      ansibleInventoryScript: refs(data.ansible_inventory_script, ['ansible_inventory_script'])[0],
    }),
    ...(data.ansible_playbook_dir !== undefined && { ansiblePlaybookDir: refs(data.ansible_playbook_dir, ['ansible_playbook_dir'])[0] }),
    ...(data.ansible_vault_password_file !== undefined && {
      ansibleVaultPasswordFile: refs(data.ansible_vault_password_file, ['ansible_vault_password_file'])[0],
    }),
  };
}
