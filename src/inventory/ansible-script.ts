// `ansible_inventory_script: inventory/ec2.py` in a keel YAML inventory: Ansible's dynamic
// inventory protocol, so that the scripts a team already has (cloud inventories listing the
// instances of an autoscaling group) work as they are. The executable is run with `--list`
// from its own directory and prints JSON:
//
//   {"web": {"hosts": ["10.0.1.5", "10.0.1.6"], "vars": {...}, "children": [...]},
//    "db": ["10.0.2.7"],                                   (a group as a plain list of hosts)
//    "_meta": {"hostvars": {"10.0.1.5": {"ansible_user": "admin", ...}}}}
//
// Without `_meta`, each host's variables come from `SCRIPT --host NAME`, as Ansible asks. The
// result is read like an Ansible YAML inventory (the same RawInventory, group_vars/ and
// host_vars/ beside the script included: ansible-tree.ts), so its connection variables
// (ansible_host, ansible_port...) and keel's own variables on top work the same way.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ConfigError, lastLines, throwIfAny, type SourceLocation } from '../errors.js';
import { checkConnectionVar } from './ansible-connection.js';
import { ansibleRawInventory, emptyVars, type RawGroup, type RawHost, type RawInventory, type RawVars } from './raw.js';

type Obj = Record<string, unknown>;

/** How long the script may run (a cloud API can be slow, not that slow). */
const TIMEOUT_MS = 120_000;

/** Runs the script and reads what it printed (see above). `shown` is its path as written. */
export async function readInventoryScript(abs: string, shown: string, location: SourceLocation): Promise<RawInventory> {
  const list = await runScript(abs, ['--list'], shown, location);
  const data = parseJson(list, `${shown} --list`, location);
  if (!isObject(data)) throw new ConfigError(`${shown} --list printed ${describe(data)}, not a JSON object of groups`, location);
  const at: SourceLocation = { file: `${shown} --list` };
  const errors: ConfigError[] = [];
  const groups = new Map<string, RawGroup>();
  const hosts = new Map<string, RawHost>();
  const group = (name: string): RawGroup => {
    let g = groups.get(name);
    if (!g) groups.set(name, (g = { name, location: at, roles: [], vars: emptyVars(), children: [], hosts: [], connection: {}, ansibleVars: emptyVars() }));
    return g;
  };
  const host = (name: string): RawHost => {
    let h = hosts.get(name);
    if (!h) hosts.set(name, (h = { name, location: at, groups: [], roles: [], vars: emptyVars(), connection: {}, ansibleVars: emptyVars() }));
    return h;
  };
  const setVars = (target: RawVars, vars: unknown, what: string) => {
    if (vars === undefined || vars === null) return;
    if (!isObject(vars)) return errors.push(new ConfigError(`${what} must be an object of variables, got ${describe(vars)}`, at));
    for (const [k, v] of Object.entries(vars)) {
      try {
        checkConnectionVar(k, v, at);
      } catch (err) {
        errors.push(err as ConfigError);
        continue;
      }
      target.values[k] = v;
      target.locations[k] = at;
    }
  };
  const names = (v: unknown, what: string): string[] => {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string' && x)) return v as string[];
    errors.push(new ConfigError(`${what} must be a list of names, got ${describe(v)}`, at));
    return [];
  };

  for (const [name, value] of Object.entries(data)) {
    if (name === '_meta') continue;
    const g = group(name);
    const spec: Obj = Array.isArray(value) ? { hosts: value } : isObject(value) ? value : {};
    if (!Array.isArray(value) && !isObject(value))
      errors.push(new ConfigError(`group "${name}" must be a list of hosts or an object, got ${describe(value)}`, at));
    const unknown = Object.keys(spec).filter((k) => !['hosts', 'vars', 'children'].includes(k));
    if (unknown.length) errors.push(new ConfigError(`group "${name}": unexpected key "${unknown[0]}" (expected hosts, vars or children)`, at));
    for (const h of names(spec.hosts, `group "${name}": hosts`)) {
      host(h);
      if (!g.hosts.some((r) => r.name === h)) g.hosts.push({ name: h, location: at });
    }
    for (const c of names(spec.children, `group "${name}": children`)) {
      group(c);
      if (!g.children.some((r) => r.name === c)) g.children.push({ name: c, location: at });
    }
    setVars(g.ansibleVars!, spec.vars, `group "${name}": vars`);
  }

  const meta = (data as { _meta?: unknown })._meta;
  if (meta !== undefined && !(isObject(meta) && (meta.hostvars === undefined || isObject(meta.hostvars)))) {
    errors.push(new ConfigError(`_meta must be an object with hostvars (an object of hosts' variables), got ${describe(meta)}`, at));
  }
  const hostvars = isObject(meta) && isObject(meta.hostvars) ? meta.hostvars : undefined;
  throwIfAny(errors);
  for (const h of hosts.values()) {
    const vars = hostvars ? hostvars[h.name] : parseJson(await runScript(abs, ['--host', h.name], shown, location), `${shown} --host ${h.name}`, location);
    setVars(h.ansibleVars!, vars, `the variables of host "${h.name}"`);
  }
  throwIfAny(errors);

  // As in Ansible's YAML inventory: `all` holds the inventory-wide vars; `ungrouped` the hosts
  // no other group lists.
  const all = groups.get('all');
  groups.delete('all');
  const listed = new Set([...groups.values()].flatMap((g) => g.hosts.map((x) => x.name)));
  const alone = [...hosts.keys()].filter((n) => !listed.has(n));
  if (alone.length) group('ungrouped').hosts.push(...alone.map((n) => ({ name: n, location: at })));
  return ansibleRawInventory(shown, abs, hosts, groups, all);
}

function runScript(abs: string, args: string[], shown: string, location: SourceLocation): Promise<string> {
  const command = `${shown} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    execFile(abs, args, { cwd: path.dirname(abs), timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
      const code = typeof e.code === 'number' ? e.code : undefined;
      if (e.code === 'ENOENT') return reject(new ConfigError(`ansible_inventory_script: ${shown} not found (looked for ${abs})`, location));
      if (e.code === 'EACCES')
        return reject(new ConfigError(`ansible_inventory_script: ${shown} is not executable`, location, { hint: `chmod +x ${shown} (it runs as ${command})` }));
      if (e.killed && e.signal === 'SIGTERM') return reject(new ConfigError(`${command} did not finish in ${TIMEOUT_MS / 1000} s`, location));
      const said = lastLines(String(stderr || stdout) || '(no output)', 10);
      reject(new ConfigError(`${command} failed (${code !== undefined ? `exit ${code}` : (e.signal ?? e.message)}):\n${said}`, location));
    });
  });
}

function parseJson(text: string, what: string, location: SourceLocation): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const start = text.trim().slice(0, 120).replace(/\s+/g, ' ');
    throw new ConfigError(`${what} did not print JSON (${(err as Error).message}); it printed: ${start || '(nothing)'}`, location, {
      hint: "an inventory script prints Ansible's dynamic inventory JSON on stdout, and what else it says on stderr",
    });
  }
}

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}
