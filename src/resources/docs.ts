// docs/resources.md, generated from each resource type's JSON Schema (the params, their types,
// enums and descriptions) and its `doc`. `npm run docs` writes it; a unit test fails when it
// is out of date, so the reference cannot drift from the code.
import { resourceTypes } from './registry.js';
import type { ResourceType } from './types.js';

type Schema = {
  type?: string | string[];
  enum?: unknown[];
  oneOf?: Schema[];
  items?: Schema;
  description?: string;
  pattern?: string;
  properties?: Record<string, Schema>;
  required?: string[];
};

const TEMPLATE: { summary: string; example: string; params: [string, string][] } = {
  summary:
    "A `file` whose content is a Handlebars template of the role (`roles/<role>/templates/<src>`), rendered on the controller with the host's variables, " +
    "strictly: a missing variable is an error naming the template's file and line.",
  example: '- template: {src: site.conf.hbs, dest: /etc/nginx/sites-enabled/app, owner: root, mode: "0644", validate: "nginx -t"}\n  notify: reload nginx',
  params: [
    ['`src` (required)', "string: the template, relative to the role's `templates/`"],
    ['`dest` (required)', 'string: absolute path of the file written'],
    ['`owner`, `group`, `mode`, `validate`, `sensitive`, `state`', 'as for `file`'],
  ],
};

export function renderResourceDocs(): string {
  const types = [...resourceTypes.values()].sort((a, b) => a.name.localeCompare(b.name));
  const out: string[] = [
    '# Resource types',
    '',
    '<!-- Generated from src/resources/*.ts by `npm run docs`; a test fails when it is out of date. -->',
    '',
    "A role's `resources:` is a list; each entry is one resource type with its params, and the",
    'keys every resource may have:',
    '',
    '| key | |',
    '|---|---|',
    '| `notify` | a handler (or a list) to run once, at the end of the run, if this resource changed |',
    '| `when` | a condition: a Handlebars expression over the variables (`eq app_server "gunicorn"`) |',
    '| `loop` | a list (or a variable holding one): the resource once per item, as `{{item}}` |',
    "| `tags` | names `--tags` selects (a role's name is a tag of all its resources) |",
    '| `name` | an id for reports, when the params do not make one |',
    '',
    'Templates live in `templates/` and files in `files/` beside `role.yaml`. Every param is',
    'validated before anything runs; every value that reaches a remote command is quoted.',
    '',
    `Types: ${[...types.map((t) => t.name), 'template']
      .sort()
      .map((n) => `[\`${n}\`](#${n.replace(/_/g, '_')})`)
      .join(', ')}.`,
    '',
  ];
  for (const t of [...types, null]) {
    if (t === null) out.push(...templateSection());
    else out.push(...section(t));
  }
  return out.join('\n') + '\n';
}

function section(t: ResourceType<unknown>): string[] {
  const schema = t.schema as Schema;
  const required = new Set(schema.required ?? []);
  const rows = Object.entries(schema.properties ?? {}).map(([name, p]) => {
    const req = required.has(name) ? ' (required)' : '';
    return `| \`${name}\`${req} | ${typeOf(p)} | ${(p.description ?? '').replace(/\|/g, '\\|')} |`;
  });
  if (t.name === 'file') rows.push("| `source` | string | instead of `content`: a file of the role's `files/` |");
  return [`## ${t.name}`, '', t.doc.summary, '', '| param | type | |', '|---|---|---|', ...rows, '', '```yaml', t.doc.example, '```', ''];
}

function templateSection(): string[] {
  return [
    '## template',
    '',
    TEMPLATE.summary,
    '',
    '| param | |',
    '|---|---|',
    ...TEMPLATE.params.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '```yaml',
    TEMPLATE.example,
    '```',
    '',
  ];
}

function typeOf(p: Schema): string {
  if (p.enum) return p.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (p.oneOf) return p.oneOf.map(typeOf).join(' or ');
  const t = Array.isArray(p.type) ? p.type.join(' or ') : (p.type ?? 'any');
  if (t === 'array') return `list of ${p.items ? typeOf(p.items) : 'any'}`;
  if (t === 'object') return 'mapping';
  return t;
}
