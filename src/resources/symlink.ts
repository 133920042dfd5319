// symlink: a symbolic link at `path` pointing to `target`. One `stat` reports every link of the
// run; QUOTING_STYLE=c makes its %N field (`"path" -> "target"`) C-escaped, so any byte in a
// target (quotes, newlines) survives the line-based output and is decoded in parse().
import { sh } from '../shell/quote.js';
import { ConfigError } from '../errors.js';
import { change, ok, type Decision, type Facts, type ResourceType } from './types.js';
import { dirname, requireAbsolute, requireDirectory } from './paths.js';
import { unique } from '../lists.js';

export interface SymlinkParams {
  path: string;
  target?: string;
  state?: 'present' | 'absent';
  /** Replace a file (or an empty directory) that is in the way. */
  force?: boolean;
}

export const symlinkType: ResourceType<SymlinkParams> = {
  name: 'symlink',
  doc: {
    summary: 'A symbolic link to a target.',
    example: '- symlink: {path: /etc/nginx/sites-enabled/app, target: /etc/nginx/sites-available/app}',
  },
  schema: {
    type: 'object',
    required: ['path'],
    additionalProperties: false,
    properties: {
      path: { description: 'absolute path of the link', type: 'string', minLength: 1 },
      target: { description: 'what it points to (required when present)', type: 'string', minLength: 1 },
      state: { description: 'present (default) or absent', type: 'string', enum: ['present', 'absent'] },
      force: { description: 'replace a file or an empty directory in the way', type: 'boolean' },
    },
  },

  identity: (p) => p.path,

  normalize(p) {
    const path = requireAbsolute(p.path, 'symlink path');
    if ((p.state ?? 'present') === 'present' && p.target === undefined) throw new ConfigError(`symlink ${path}: target is required`);
    if (p.target?.includes('\0')) throw new ConfigError(`symlink ${path}: target cannot contain a NUL byte`);
    return { ...p, path };
  },

  probe(items) {
    const paths = unique(items.map((i) => i.params.path));
    return sh`QUOTING_STYLE=c stat --printf '%F\\t%N\\n' -- ${paths} 2>/dev/null\n`;
  },

  parse(output, items) {
    const byPath = new Map<string, Facts>();
    for (const line of output.split('\n')) {
      const t = line.indexOf('\t');
      if (t < 0) continue;
      const names = parseQuotedNames(line.slice(t + 1));
      if (!names) continue;
      const facts: Facts = { type: line.slice(0, t) };
      if (names[1] !== undefined) facts.target = names[1];
      byPath.set(names[0], facts);
    }
    return new Map(items.map((i) => [i.key, byPath.get(i.params.path) ?? {}]));
  },

  decide(p, f): Decision {
    const exists = !!f.type;
    const isLink = f.type === 'symbolic link';
    if (p.state === 'absent') {
      if (!exists) return ok(`${p.path} is absent`);
      if (!isLink) return ok(`${p.path} is a ${f.type}, not a symlink: left alone`);
      return change(`remove symlink ${p.path}`, [sh`if [ -L ${p.path} ]; then rm -f -- ${p.path}; fi`]);
    }
    const target = p.target!;
    if (isLink && f.target === target) return ok(`${p.path} -> ${target}`);
    if (exists && !isLink && !p.force) {
      throw new ConfigError(`symlink ${p.path}: a ${f.type} is in the way`, undefined, { hint: 'set force: true to replace it' });
    }
    const reason = !exists
      ? `create ${p.path} -> ${target}`
      : isLink
        ? `${p.path} -> ${f.target}, want ${target}`
        : `replace ${f.type} ${p.path} with a link to ${target}`;
    // Re-checked at apply time: the state may have changed since the probe. An empty directory
    // is replaced under force; a non-empty one makes rmdir fail rather than losing its files.
    const inTheWay = p.force
      ? sh`if [ -d ${p.path} ] && [ ! -L ${p.path} ]; then rmdir -- ${p.path}; fi`
      : sh`if [ -e ${p.path} ] && [ ! -L ${p.path} ]; then echo ${p.path + ' exists and is not a symlink (set force: true to replace it)'} >&2; exit 1; fi`;
    return change(reason, [requireDirectory(dirname(p.path), p.path, 'symlink'), inTheWay, sh`ln -sfn -- ${target} ${p.path}`]);
  },
};

/** Decode stat's %N in the `c` quoting style: `"path"` or `"path" -> "target"`. */
export function parseQuotedNames(s: string): [string, string?] | undefined {
  const first = readCString(s, 0);
  if (!first) return undefined;
  const rest = s.slice(first.end);
  if (!rest.startsWith(' -> ')) return [first.value];
  const second = readCString(s, first.end + 4);
  return second ? [first.value, second.value] : [first.value];
}

const ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39, '?': 63 };

function readCString(s: string, start: number): { value: string; end: number } | undefined {
  if (s[start] !== '"') return undefined;
  const bytes: number[] = [];
  let i = start + 1;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '"') return { value: Buffer.from(bytes).toString('utf8'), end: i + 1 };
    if (c === '\\') {
      const n = s[i + 1] ?? '';
      const oct = /^[0-7]{1,3}/.exec(s.slice(i + 1, i + 4));
      if (oct) {
        bytes.push(parseInt(oct[0], 8));
        i += 1 + oct[0].length;
      } else {
        bytes.push(ESCAPES[n] ?? n.charCodeAt(0));
        i += 2;
      }
      continue;
    }
    const ch = String.fromCodePoint(s.codePointAt(i)!);
    bytes.push(...Buffer.from(ch, 'utf8'));
    i += ch.length;
  }
  return undefined;
}
