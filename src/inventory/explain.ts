// `keel inventory <env> --explain`: for every host, each variable with where its value comes
// from (file:line:column, and which layer that is: "inventory group_vars/web", "keel inventory
// group web", "-e"), the places it overrides, the connection variables of an Ansible tree and
// the setting each became, and the values keel cannot evaluate. Values go through `mask`.
// A migrating user checks this against `ansible-inventory --list`.
import { formatLocation } from '../errors.js';
import { MASK } from '../report/redact.js';
import { connectionField } from './ansible-connection.js';
import type { Host, Inventory, VarSource } from './types.js';

export interface ExplainedSource {
  at: string;
  layer: string;
}

export interface ExplainedVar {
  name: string;
  /** Absent when keel cannot evaluate it. */
  value?: unknown;
  from: ExplainedSource;
  /** Lower layers that set it too, nearest first. */
  overrides?: ExplainedSource[];
  secret?: true;
  /** Ansible INI: Ansible reads the same text as this value (keel's differs). */
  ansibleReadsAs?: unknown;
  /** An Ansible connection variable: the keel connection setting it became. */
  connection?: string;
  notEvaluated?: { expression?: string; why: string; keel?: string };
}

export interface ExplainedHost {
  name: string;
  groups: string[];
  vars: ExplainedVar[];
}

export interface Explained {
  env: string;
  file: string;
  ansible?: { inventory: string; inventoryDir: string; playbookDir?: string };
  hosts: ExplainedHost[];
}

const source = (s: VarSource): ExplainedSource => ({ at: formatLocation(s.location), layer: s.label });

export function explainInventory(inv: Inventory, hosts: Host[], mask: (v: unknown) => unknown, display: (abs: string) => string): Explained {
  return {
    env: inv.env,
    file: display(inv.file),
    ...(inv.ansible && {
      ansible: {
        inventory: inv.ansible.file,
        inventoryDir: display(inv.ansible.inventoryDir),
        ...(inv.ansible.playbookDir && { playbookDir: display(inv.ansible.playbookDir) }),
      },
    }),
    hosts: hosts.map((h) => ({ name: h.name, groups: h.groups, vars: explainHost(h, mask) })),
  };
}

function explainHost(h: Host, mask: (v: unknown) => unknown): ExplainedVar[] {
  const out: ExplainedVar[] = [];
  const withHistory = (sources: VarSource[] | undefined, fallback: VarSource): Pick<ExplainedVar, 'from' | 'overrides' | 'secret'> => {
    const all = sources?.length ? sources : [fallback];
    const win = all[all.length - 1]!;
    const over = all.slice(0, -1).reverse().map(source);
    return { from: source(win), ...(over.length && { overrides: over }), ...(win.secret && { secret: true }) };
  };
  for (const [name, value] of Object.entries(h.vars)) {
    const sources = h.varSources?.[name];
    const reads = sources?.at(-1)?.ansibleReadsAs;
    const history = withHistory(sources, { label: 'inventory', location: h.varLocations?.[name] ?? h.location });
    out.push({
      name,
      value: history.secret ? MASK : mask(value),
      ...history,
      ...(reads && { ansibleReadsAs: mask(reads.value) }),
    });
  }
  for (const [name, c] of Object.entries(h.connectionVars ?? {})) {
    const u = h.unevaluable?.find((x) => x.name === name);
    out.push({
      name,
      ...(!u && { value: c.source.secret ? MASK : mask(c.value) }),
      from: source(c.source),
      ...(c.source.secret && { secret: true }),
      connection: connectionField(name) ?? 'connection',
      ...(u && { notEvaluated: { ...(u.expression !== undefined && { expression: u.expression }), why: u.why, ...(u.keel && { keel: u.keel }) } }),
    });
  }
  for (const u of h.unevaluable ?? []) {
    if (u.connection) continue;
    out.push({
      name: u.name,
      ...withHistory(h.varSources?.[u.name], { label: 'inventory', location: u.location }),
      notEvaluated: { ...(u.expression !== undefined && { expression: u.expression }), why: u.why, ...(u.keel && { keel: u.keel }) },
    });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The report as text: a block per host, two lines or more per variable. */
export function explainText(e: Explained): string {
  const lines = [`# keel inventory ${e.env}: ${e.file}`];
  if (e.ansible) {
    const a = e.ansible;
    const dirs = [`${a.inventoryDir} (inventory)`, ...(a.playbookDir ? [`${a.playbookDir} (playbook)`] : [])];
    lines.push(
      `# Ansible tree: ${a.inventory}, with the group_vars/ and host_vars/ of ${dirs.join(' and ')}, ranked as Ansible ranks them;`,
      "# keel's own settings on top (keel inventory vars, its groups', the host's, -e). To compare:",
      `#   ansible-inventory -i ${a.inventory}${a.playbookDir ? ` --playbook-dir ${a.playbookDir}` : ''} --list`,
    );
  }
  for (const h of e.hosts) {
    lines.push('', `${h.name} (groups: ${h.groups.join(', ')})`);
    for (const v of h.vars) {
      const shown = v.notEvaluated ? 'NOT EVALUATED' : JSON.stringify(v.value);
      lines.push(`  ${v.name}: ${shown}${v.connection ? ` -> connection ${v.connection}` : ''}${v.secret ? ' (Ansible Vault)' : ''}`);
      lines.push(`      from ${v.from.at} (${v.from.layer})`);
      for (const o of v.overrides ?? []) lines.push(`      over ${o.at} (${o.layer})`);
      if (v.ansibleReadsAs !== undefined)
        lines.push(`      Ansible reads this text as ${JSON.stringify(v.ansibleReadsAs)}; keel as ${JSON.stringify(v.value)}`);
      if (v.notEvaluated) {
        const n = v.notEvaluated;
        lines.push(`      ${n.expression !== undefined ? `${n.expression}: ` : ''}${n.why}${n.keel ? `; in keel: ${n.keel}` : ''}`);
      }
    }
  }
  return lines.join('\n');
}
