// Jinja in values from an Ansible tree. keel renders variables with Handlebars, which reads
// `{{ name }}` and `{{ name.key }}` exactly as Jinja does; anything else (filters, tests,
// `{% %}` blocks, lookups, indexing, Ansible's facts and magic variables) keel cannot
// evaluate. Such a value is named, with the expression and the keel equivalent where there is
// one, never used as written (resolve.ts leaves it out of the host's variables).

export interface JinjaProblem {
  /** The part of the value keel cannot evaluate, as written. */
  expression: string;
  why: string;
  /** What to write in keel instead, when there is an equivalent. */
  keel?: string;
}

/** What a name is for a host: a variable keel will have, one it cannot evaluate, or neither
 *  (then a role default, a secret or keel's own builtins may still define it). */
export type NameKind = 'var' | 'unevaluable' | 'absent';

const MARKER = /\{\{|\{%|\{#/;
const SIMPLE = /^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$/;

/** The first Jinja construct in a value, as written. */
export function firstJinja(value: unknown): string | undefined {
  if (typeof value === 'string') return /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}|\{#[\s\S]*?#\}|\{[{%#][\s\S]*$/.exec(value)?.[0];
  if (Array.isArray(value)) return first(value, firstJinja);
  if (value && typeof value === 'object') return first(Object.values(value), firstJinja);
  return undefined;
}

export function hasJinja(value: unknown): boolean {
  if (typeof value === 'string') return MARKER.test(value);
  if (Array.isArray(value)) return value.some(hasJinja);
  if (value && typeof value === 'object') return Object.values(value).some(hasJinja);
  return false;
}

const FACT = 'an Ansible fact, gathered from the host when a play starts: keel gathers no facts';
const CONNECTION = 'a connection variable: keel makes it part of the connection and does not give it to templates';
const OTHER_HOSTS = "Ansible's view of the other hosts: keel renders each host on its own";
const CONTROLLER_PATH = "a path on Ansible's controller";

const MAGIC: Record<string, { why: string; keel?: string }> = {
  inventory_hostname_short: { why: "Ansible's magic variable (the host's name up to its first dot)" },
  group_names: { why: "Ansible's magic variable (the host's groups)", keel: '{{host.groups}} (its list starts with "all")' },
  groups: { why: OTHER_HOSTS },
  hostvars: { why: OTHER_HOSTS },
  play_hosts: { why: OTHER_HOSTS },
  ansible_play_hosts: { why: OTHER_HOSTS },
  ansible_play_hosts_all: { why: OTHER_HOSTS },
  ansible_play_batch: { why: OTHER_HOSTS },
  inventory_dir: { why: CONTROLLER_PATH },
  inventory_file: { why: CONTROLLER_PATH },
  playbook_dir: { why: CONTROLLER_PATH },
  role_path: { why: CONTROLLER_PATH },
  ansible_config_file: { why: CONTROLLER_PATH },
  omit: { why: "Ansible's placeholder for leaving a module parameter out", keel: 'leave the variable unset (a role default applies)' },
  ansible_host: { why: CONNECTION, keel: '{{host.address}}' },
  ansible_ssh_host: { why: CONNECTION, keel: '{{host.address}}' },
  ansible_port: { why: CONNECTION },
  ansible_ssh_port: { why: CONNECTION },
  ansible_user: { why: CONNECTION },
  ansible_ssh_user: { why: CONNECTION },
  ansible_become: { why: CONNECTION },
  ansible_become_user: { why: CONNECTION },
  ansible_private_key_file: { why: CONNECTION },
  ansible_ssh_private_key_file: { why: CONNECTION },
  ansible_ssh_common_args: { why: CONNECTION },
  ansible_ssh_extra_args: { why: CONNECTION },
};

const HOME = { why: FACT, keel: "write the path itself (the connection user's home, e.g. /home/deploy or /root)" };

/** Handlebars' equivalent of `base | filter(args)`, for the filters keel has as helpers. */
const FILTERS: Record<string, (base: string, args: string[]) => string | undefined> = {
  default: (b, a) => (a.length >= 1 ? `{{default ${b} ${a[0]}}}` : undefined),
  d: (b, a) => (a.length >= 1 ? `{{default ${b} ${a[0]}}}` : undefined),
  quote: (b) => `{{quote ${b}}}`,
  join: (b, a) => `{{join ${b} ${a[0] ?? '""'}}}`,
  basename: (b) => `{{basename ${b}}}`,
  dirname: (b) => `{{dirname ${b}}}`,
  to_json: (b) => `{{json ${b}}}`,
};

/** The first part of `value` keel cannot evaluate; undefined when keel reads it as Ansible does. */
export function jinjaProblem(value: unknown, kind: (name: string) => NameKind): JinjaProblem | undefined {
  if (Array.isArray(value)) return first(value, (v) => jinjaProblem(v, kind));
  if (value && typeof value === 'object') return first(Object.values(value), (v) => jinjaProblem(v, kind));
  if (typeof value !== 'string' || !MARKER.test(value)) return undefined;
  const re = /\{\{([\s\S]*?)\}\}|\{%[\s\S]*?%\}|\{#[\s\S]*?#\}|\{[{%#][\s\S]*$/g;
  for (const m of value.matchAll(re)) {
    const text = m[0];
    if (m[1] === undefined) {
      if (text.startsWith('{#')) return { expression: text, why: 'a Jinja comment', keel: '{{!-- ... --}}' };
      if (/^\{%-?\s*raw\b/.test(text)) return { expression: text, why: 'Jinja raw text', keel: 'escape the braces: \\{{...}}' };
      if (text.startsWith('{%')) return { expression: text, why: 'a Jinja statement', keel: '{{#if name}}...{{/if}} or {{#each list}}...{{/each}}' };
      return { expression: text, why: 'an unclosed Jinja expression' };
    }
    const problem = expressionProblem(m[1].trim(), kind);
    if (problem) return { expression: text, ...problem };
  }
  return undefined;
}

function expressionProblem(expr: string, kind: (name: string) => NameKind): Omit<JinjaProblem, 'expression'> | undefined {
  if (SIMPLE.test(expr)) return nameProblem(expr, kind);
  const filtered = /^([A-Za-z_][\w.]*)\s*\|\s*([A-Za-z_]\w*)\s*(?:\(([^()]*)\))?$/.exec(expr);
  if (filtered && SIMPLE.test(filtered[1]!)) {
    const [, base, filter, argText] = filtered as unknown as [string, string, string, string | undefined];
    const baseProblem = nameProblem(base, kind);
    if (baseProblem) return baseProblem;
    const args = argText === undefined ? [] : splitArgs(argText);
    const keel = args !== undefined ? FILTERS[filter]?.(base, args) : undefined;
    return { why: `the Jinja filter "${filter}"`, ...(keel && { keel }) };
  }
  const index = /^([A-Za-z_]\w*)\s*\[\s*(['"])(\w+)\2\s*\]$/.exec(expr);
  if (index) {
    const path = `${index[1]}.${index[3]}`;
    return nameProblem(path, kind) ?? { why: 'Jinja subscript syntax', keel: `{{${path}}}` };
  }
  if (/^(lookup|query|q)\s*\(/.test(expr)) return { why: 'an Ansible lookup, run on the controller' };
  if (/^(hostvars|groups)\s*\[/.test(expr)) return { why: OTHER_HOSTS };
  return { why: 'a Jinja expression that is not a plain variable' };
}

function nameProblem(path: string, kind: (name: string) => NameKind): Omit<JinjaProblem, 'expression'> | undefined {
  const root = path.split('.')[0]!;
  const magic = MAGIC[root];
  if (magic) return magic;
  const k = kind(root);
  if (k === 'unevaluable') return { why: `it refers to ${root}, which keel cannot evaluate` };
  if (k === 'absent' && (root.startsWith('ansible_') || root === 'facts')) {
    return path === 'ansible_env.HOME' || root === 'ansible_user_dir' ? HOME : { why: FACT };
  }
  return undefined;
}

/** Jinja literal arguments as Handlebars ones ('x' -> "x"); undefined if one is not a literal. */
function splitArgs(text: string): string[] | undefined {
  const out: string[] = [];
  const arg = /\s*(?:'([^'"]*)'|"([^'"]*)"|(-?\d+(?:\.\d+)?|true|false|True|False|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*))\s*(,|$)/y;
  while (arg.lastIndex < text.length) {
    const m = arg.exec(text);
    if (!m) return text.trim() === '' && out.length === 0 ? [] : undefined;
    const [, single, double, bare] = m;
    out.push(bare === undefined ? `"${single ?? double}"` : /^(True|False)$/.test(bare) ? bare.toLowerCase() : bare);
    if (m[4] === '') break;
  }
  return out;
}

function first<T, R>(xs: T[], f: (x: T) => R | undefined): R | undefined {
  for (const x of xs) {
    const r = f(x);
    if (r !== undefined) return r;
  }
  return undefined;
}
