// Reads Ansible INI inventories (https://docs.ansible.com/ansible/latest/inventory_guide/)
// into the same RawInventory as keel's YAML, so a team can point keel at its existing
// `hosts` file unchanged.
//
// Supported: `[group]`, `[group:children]`, `[group:vars]` (including `[all:vars]`), host
// lines with inline `key=value` vars quoted with ' or ", `host:port`, ranges like
// `web[01:03]` or `db-[a:c]`, comments (lines starting with # or ;, and `#` starting a
// word on host lines). Hosts listed before any section are in `ungrouped` (and leave it as
// soon as another group lists them, as in Ansible). Groups named by `:children` or `:vars`
// sections are created if no section defines them, as in Ansible.
//
// The variables are kept as Ansible variables (`ansibleVars` of the host, group or `all`),
// connection variables included: ansible-tree.ts ranks them with group_vars/ and host_vars/
// as Ansible does, and the winning connection variables become the host's connection
// (ansible-connection.ts). `host:2222` is `ansible_port=2222` on that host, as in Ansible.
// `ansible_group_priority` in `[group:vars]` orders groups of the same depth, as in Ansible.
//
// Values: quoted values stay strings. Unquoted `true`/`false` (any case) become booleans and
// decimal integers become numbers; other unquoted values (floats, lists, dicts) stay strings.
// In `:vars` sections everything after the first `=` is the value, comments included. Ansible
// reads some of these differently (it runs Python's literal_eval: `true` stays a string
// there, `1.5` is a float, `"42"` on a host line is 42): where it does, `ansibleReadsAs` says
// what Ansible reads, and `keel inventory --explain` names the difference.
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, type SourceLocation } from '../errors.js';
import { checkConnectionVar } from './ansible-connection.js';
import { ansibleIniValue } from './py-literal.js';
import { ansibleRawInventory, emptyVars, type RawGroup, type RawHost, type RawInventory, type RawVars } from './raw.js';

interface Token {
  text: string;
  column: number;
  quoted: boolean;
}

type Section = { kind: 'hosts' | 'children' | 'vars'; group: RawGroup };

export function readIniInventory(text: string, file: string, absPath: string): RawInventory {
  const groups = new Map<string, RawGroup>();
  const hosts = new Map<string, RawHost>();
  const groupNamed = (name: string, location: SourceLocation): RawGroup => {
    let g = groups.get(name);
    if (!g) {
      g = { name, location, roles: [], vars: emptyVars(), children: [], hosts: [], connection: {}, ansibleVars: emptyVars() };
      groups.set(name, g);
    }
    return g;
  };
  let section: Section = { kind: 'hosts', group: groupNamed('ungrouped', { file, line: 1 }) };

  text.split(/\r?\n/).forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    const column = raw.indexOf(line) + 1;
    const at = (col: number): SourceLocation => ({ file, line: lineNo, column: col });
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;

    if (line.startsWith('[')) {
      const m = /^\[([^:\]\s]+)(?::([^\]\s]*))?\]\s*([#;].*)?$/.exec(line);
      if (!m) throw new ConfigError(`malformed section header ${JSON.stringify(line)} (expected [group], [group:children] or [group:vars])`, at(column));
      const suffix = m[2];
      if (suffix !== undefined && suffix !== 'children' && suffix !== 'vars') {
        throw new ConfigError(`unknown section type ":${suffix}" (expected [${m[1]}:children] or [${m[1]}:vars])`, at(column + m[1]!.length + 1));
      }
      const kind = suffix ?? 'hosts';
      const group = groupNamed(m[1]!, at(column));
      if (kind === 'hosts') group.location = at(column); // the defining section wins over a mention
      section = { kind, group };
      return;
    }

    if (section.kind === 'vars') {
      const eq = line.indexOf('=');
      if (eq <= 0) throw new ConfigError(`expected key=value in [${section.group.name}:vars], got ${JSON.stringify(line)}`, at(column));
      const key = line.slice(0, eq).trim();
      const rawValue = line.slice(eq + 1).trim();
      const quoted = /^(["']).*\1$/.test(rawValue) && rawValue.length >= 2;
      const value = quoted ? rawValue.slice(1, -1) : rawValue;
      const valueColumn = column + eq + 1 + (line.slice(eq + 1).length - line.slice(eq + 1).trimStart().length);
      if (key === 'ansible_group_priority') {
        section.group.ansiblePriority = groupPriority(value, at(valueColumn));
        return;
      }
      assignVar(section.group.ansibleVars!, key, value, quoted, rawValue, at(column), at(valueColumn));
      return;
    }

    if (section.kind === 'children') {
      if (!/^[^\s=]+$/.test(line)) throw new ConfigError(`expected a group name in [${section.group.name}:children], got ${JSON.stringify(line)}`, at(column));
      section.group.children.push({ name: line, location: at(column) });
      return;
    }

    const tokens = tokenize(raw, lineNo, file);
    if (tokens.length === 0) return;
    const [pattern, ...assignments] = tokens;
    for (const spec of expandHostPattern(pattern!.text, at(pattern!.column))) {
      let host = hosts.get(spec.name);
      if (!host) {
        host = { name: spec.name, location: at(pattern!.column), groups: [], roles: [], vars: emptyVars(), connection: {}, ansibleVars: emptyVars() };
        hosts.set(spec.name, host);
      }
      if (spec.port !== undefined) {
        host.ansibleVars!.values['ansible_port'] = spec.port;
        host.ansibleVars!.locations['ansible_port'] = at(pattern!.column);
      }
      if (!section.group.hosts.some((h) => h.name === spec.name)) {
        section.group.hosts.push({ name: spec.name, location: at(pattern!.column) });
      }
      for (const token of assignments) {
        const eq = token.text.indexOf('=');
        if (eq <= 0) throw new ConfigError(`expected key=value after host "${spec.name}", got ${JSON.stringify(token.text)}`, at(token.column));
        const text = token.text.slice(eq + 1);
        assignVar(host.ansibleVars!, token.text.slice(0, eq), text, token.quoted, text, at(token.column), at(token.column + eq + 1));
      }
    }
  });

  // Ansible's rule: `ungrouped` holds the hosts that no other group lists.
  const ungrouped = groups.get('ungrouped')!;
  const listed = new Set([...groups.values()].filter((g) => g !== ungrouped).flatMap((g) => g.hosts.map((h) => h.name)));
  ungrouped.hosts = ungrouped.hosts.filter((h) => !listed.has(h.name));
  if (ungrouped.hosts.length === 0 && ungrouped.children.length === 0 && Object.keys(ungrouped.ansibleVars!.values).length === 0) {
    groups.delete('ungrouped');
  }
  const all = groups.get('all');
  groups.delete('all');
  return ansibleRawInventory(file, absPath, hosts, groups, all);
}

/** Ansible's conversions for unquoted values (see the header comment). */
export function iniValue(text: string, quoted: boolean): unknown {
  if (quoted) return text;
  if (/^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
  if (/^-?(0|[1-9][0-9]*)$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  return text;
}

/** `ansibleText`: the value as Ansible's literal_eval sees it (a host line's token without its
 *  quotes, a `:vars` line's text with them). */
function assignVar(
  target: RawVars,
  key: string,
  text: string,
  quoted: boolean,
  ansibleText: string,
  keyLocation: SourceLocation,
  valueLocation: SourceLocation,
): void {
  checkConnectionVar(key, text, valueLocation);
  const value = iniValue(text, quoted);
  target.values[key] = value;
  target.locations[key] = keyLocation;
  const ansible = ansibleIniValue(ansibleText);
  if (ansible.known && !isDeepStrictEqual(ansible.value, value)) (target.ansibleReadsAs ??= {})[key] = ansible.value;
  else if (target.ansibleReadsAs) delete target.ansibleReadsAs[key];
}

function groupPriority(text: string, location: SourceLocation): number {
  if (!/^-?[0-9]+$/.test(text.trim())) throw new ConfigError(`"ansible_group_priority" must be an integer, got ${JSON.stringify(text)}`, location);
  return Number(text);
}

/** The hops of `-J a,b` or `-o ProxyJump=a,b` in ssh arguments, outermost first. */
export function proxyJumpOf(args: string): string[] {
  const words = tokenize(args, 0, '').map((t) => t.text);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let spec: string | undefined;
    if (w === '-J') spec = words[++i];
    else if (w.startsWith('-J')) spec = w.slice(2);
    else if (w === '-o' || w.startsWith('-o')) {
      const opt = w === '-o' ? words[++i] : w.slice(2);
      const m = /^ProxyJump(?:\s*=\s*|\s+)(.+)$/i.exec(opt ?? '');
      if (m) spec = m[1];
      else if (/^ProxyJump$/i.test(opt ?? '')) spec = words[++i];
    }
    if (spec)
      return spec
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
  }
  return [];
}

/** shlex-like splitting: whitespace separates words, quotes group, `#` starting a word ends the line. */
function tokenize(line: string, lineNo: number, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length || line[i] === '#') break;
    const start = i;
    let text = '';
    let quoted = false;
    while (i < line.length && !/\s/.test(line[i]!)) {
      const c = line[i]!;
      if (c === '"' || c === "'") {
        const end = line.indexOf(c, i + 1);
        if (end < 0) throw new ConfigError(`unterminated ${c} quote`, { file, line: lineNo, column: i + 1 });
        text += line.slice(i + 1, end);
        quoted = true;
        i = end + 1;
      } else if (c === '\\' && i + 1 < line.length) {
        text += line[i + 1];
        i += 2;
      } else {
        text += c;
        i++;
      }
    }
    tokens.push({ text, column: start + 1, quoted });
  }
  return tokens;
}

/** `web[01:03]` → web01, web02, web03; `db-[a:c]`; `host:2222` sets the port. */
export function expandHostPattern(pattern: string, location: SourceLocation): { name: string; port?: number }[] {
  const portMatch = /^([^:[\]]+|.*\])(?::([0-9]+))$/.exec(pattern);
  const base = portMatch ? portMatch[1]! : pattern;
  const port = portMatch ? Number(portMatch[2]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) {
    throw new ConfigError(`port must be an integer between 1 and 65535, got ${portMatch![2]}`, location);
  }
  return expandRanges(base, location).map((name) => ({ name, port }));
}

function expandRanges(pattern: string, location: SourceLocation): string[] {
  const m = /^(.*?)\[([^:\]]+):([^:\]]+)(?::([0-9]+))?\](.*)$/.exec(pattern);
  if (!m) return [pattern];
  const [, prefix, from, to, stepText, rest] = m as unknown as [string, string, string, string, string | undefined, string];
  const step = stepText === undefined ? 1 : Number(stepText);
  const values: string[] = [];
  if (/^[0-9]+$/.test(from) && /^[0-9]+$/.test(to) && step > 0) {
    const width = from.length > 1 && from.startsWith('0') ? from.length : 0;
    for (let n = Number(from); n <= Number(to); n += step) values.push(String(n).padStart(width, '0'));
  } else if (/^[a-z]$/i.test(from) && /^[a-z]$/i.test(to) && step > 0) {
    for (let c = from.charCodeAt(0); c <= to.charCodeAt(0); c += step) values.push(String.fromCharCode(c));
  }
  if (values.length === 0) throw new ConfigError(`invalid host range "[${m[2]}:${m[3]}]" in "${pattern}"`, location);
  return values.flatMap((v) => expandRanges(`${prefix}${v}${rest}`, location));
}
