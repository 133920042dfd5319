// The work both tools do: one resource set, generated from a size, written once as a keel role
// and once as an Ansible playbook, plus the shell snippets the bench runs through `docker exec`
// (reset to "never provisioned", drift 5% of the files, digest of the managed state).
//
// Paths and names depend only on a resource's index, so the set for R resources is a subset of
// the set for 2R: after converging 2R, a run of R is a no-op too (the 200 → 400 scaling figure).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface Workload {
  resources: number;
  groups: { name: string; gid: number }[];
  users: { name: string; uid: number; group: string; home: string; shell: string }[];
  packages: string[];
  services: { name: string; enabled?: boolean }[];
  dirs: { path: string; owner: string; group: string; mode: string }[];
  files: { path: string; content: string; mode: string }[];
  templates: { path: string; src: string; source: string; mode: string }[];
  lines: { path: string; regexp: string; line: string }[];
  /** Template variables (values avoid characters Handlebars or Jinja would treat specially). */
  vars: Record<string, string>;
  /** How many of the d* directories hold the files and templates. */
  fileDirs: number;
}

/** Installed on every target (base image, plus python3 and cron the bench adds for Ansible and a service). */
const PRESENT_PACKAGES = [
  'openssh-server',
  'sudo',
  'ca-certificates',
  'iproute2',
  'procps',
  'dbus',
  'python3',
  'cron',
  'systemd',
  'systemd-sysv',
  'bash',
  'coreutils',
  'apt',
  'dpkg',
  'gzip',
  'tar',
  'sed',
  'grep',
  'findutils',
  'debianutils',
];
const RUNNING_SERVICES: { name: string; enabled?: boolean }[] = [
  { name: 'ssh', enabled: true },
  { name: 'cron', enabled: true },
  { name: 'dbus' },
  { name: 'systemd-journald' },
];
const ROOT = '/srv/bench';
const LINES_PER_FILE = 8;
const FILE_DIRS = 20;

const pad = (n: number) => String(n).padStart(3, '0');

/** `like`: keep the layout of a smaller set (its file directories), so that set is a subset of this one. */
export function makeWorkload(resources: number, like?: Workload, opts: { services?: boolean } = {}): Workload {
  if (!Number.isInteger(resources) || resources < 12) throw new Error(`--resources must be a whole number ≥ 12, got ${resources}`);
  const nPackages = clamp(Math.round(resources * 0.05), 1, PRESENT_PACKAGES.length);
  // Light endpoints (sshd without systemd) have no services to manage.
  const nServices = opts.services === false ? 0 : clamp(Math.round(resources * 0.02), 1, RUNNING_SERVICES.length);
  const nUsers = Math.max(1, Math.round(resources * 0.015));
  // groups + users + packages + services are fixed; the rest splits 30/40/15/15 over
  // directories, files, templates and lines.
  const rest = resources - nPackages - nServices - 2 * nUsers;
  const nDirs = Math.max(3, Math.round(rest * 0.3));
  const nFiles = Math.round(rest * 0.4);
  const nTemplates = Math.round(rest * 0.15);
  const nLines = rest - nDirs - nFiles - nTemplates;

  const groups = range(nUsers).map((i) => ({ name: `bench${pad(i)}`, gid: 2000 + i }));
  const users = range(nUsers).map((i) => ({
    name: `bench${pad(i)}`,
    uid: 2000 + i,
    group: `bench${pad(i)}`,
    home: `${ROOT}/home${pad(i)}`,
    shell: '/usr/sbin/nologin',
  }));
  // The first two directories hold everything else; then d000.. (some owned by the bench users).
  const dirs = [
    { path: ROOT, owner: 'root', group: 'root', mode: '0755' },
    { path: '/etc/bench', owner: 'root', group: 'root', mode: '0755' },
    ...range(nDirs - 2).map((i) => {
      // Every tenth directory belongs to the first bench user (the same in R and 2R).
      const u = i % 10 === 9 ? users[0]!.name : 'root';
      return { path: `${ROOT}/d${pad(i)}`, owner: u, group: u, mode: i % 3 === 0 ? '0750' : '0755' };
    }),
  ];
  const fileDirs = like?.fileDirs ?? Math.min(FILE_DIRS, nDirs - 2);
  const files = range(nFiles).map((i) => ({
    path: `${ROOT}/d${pad(i % fileDirs)}/f${pad(i)}.conf`,
    content: fileContent(i),
    mode: i % 4 === 0 ? '0600' : '0644',
  }));
  const templates = range(nTemplates).map((i) => ({
    path: `${ROOT}/d${pad(i % fileDirs)}/t${pad(i)}.conf`,
    src: `t${pad(i)}.conf.tmpl`,
    source: templateSource(i),
    mode: '0644',
  }));
  const lines = range(nLines).map((i) => ({
    path: `/etc/bench/lines${pad((i / LINES_PER_FILE) | 0)}.conf`,
    regexp: `^opt_${pad(i)} `,
    line: `opt_${pad(i)} value-${i}`,
  }));
  return {
    resources,
    groups,
    users,
    packages: PRESENT_PACKAGES.slice(0, nPackages),
    services: RUNNING_SERVICES.slice(0, nServices),
    dirs,
    files,
    templates,
    lines,
    fileDirs,
    vars: { bench_server_name: 'bench.example.org', bench_port: '8080', bench_workers: '4', bench_root: ROOT },
  };
}

export function countResources(w: Workload): number {
  return w.groups.length + w.users.length + w.packages.length + w.services.length + w.dirs.length + w.files.length + w.templates.length + w.lines.length;
}

function fileContent(i: number): string {
  const body = range(30).map((k) => `key_${k} = value-${i}-${k} # a setting line of a typical config file`);
  return `# bench file ${i}, managed\n${body.join('\n')}\n`;
}

function templateSource(i: number): string {
  const body = range(20).map((k) => `upstream_${k} {{bench_server_name}}:{{bench_port}} weight ${k}`);
  return (
    `# bench template ${i}, managed\nserver_name {{bench_server_name}};\nroot {{bench_root}}/d${pad(i)};\n` + `workers {{bench_workers}};\n${body.join('\n')}\n`
  );
}

// ---------------------------------------------------------------------------------------------
// keel

/** Writes roles/bench/ (role.yaml + templates/) under `root`. */
export async function writeKeelRole(root: string, w: Workload): Promise<void> {
  const dir = join(root, 'roles', 'bench');
  await mkdir(join(dir, 'templates'), { recursive: true });
  const resources: object[] = [
    ...w.groups.map((g) => ({ group: { name: g.name, gid: g.gid, system: true } })),
    ...w.users.map((u) => ({ user: { name: u.name, uid: u.uid, group: u.group, home: u.home, shell: u.shell, system: true, create_home: false } })),
    ...w.packages.map((p) => ({ package: { name: p } })),
    ...w.services.map((s) => ({ service: { name: s.name, state: 'started', ...(s.enabled ? { enabled: true } : {}) } })),
    ...w.dirs.map((d) => ({ directory: { path: d.path, owner: d.owner, group: d.group, mode: d.mode } })),
    ...w.files.map((f) => ({ file: { path: f.path, content: f.content, owner: 'root', group: 'root', mode: f.mode } })),
    ...w.templates.map((t) => ({ template: { src: t.src, dest: t.path, owner: 'root', group: 'root', mode: t.mode } })),
    ...w.lines.map((l) => ({ line: { path: l.path, regexp: l.regexp, line: l.line, create: true } })),
  ];
  const role = {
    description: `keel benchmark: ${w.resources} resources of the usual kinds`,
    variables: Object.fromEntries(Object.entries(w.vars).map(([k, v]) => [k, { type: 'string', default: v }])),
    resources,
  };
  await writeFile(join(dir, 'role.yaml'), stringify(role, { lineWidth: 0 }));
  await Promise.all(w.templates.map((t) => writeFile(join(dir, 'templates', t.src), t.source)));
}

// ---------------------------------------------------------------------------------------------
// Ansible: the same resources in the same order, one task per kind with a loop (how Ansible is
// written when it is written well), packages in one apt call.

export async function writeAnsiblePlaybook(dir: string, w: Workload): Promise<string> {
  await mkdir(join(dir, 'templates'), { recursive: true });
  await Promise.all(w.templates.map((t) => writeFile(join(dir, 'templates', t.src), t.source)));
  const label = (key: string) => ({ label: `{{ item.${key} }}` });
  const tasks = [
    { name: 'groups', 'ansible.builtin.group': { name: '{{ item.name }}', gid: '{{ item.gid }}', system: true }, loop: w.groups, loop_control: label('name') },
    {
      name: 'users',
      'ansible.builtin.user': {
        name: '{{ item.name }}',
        uid: '{{ item.uid }}',
        group: '{{ item.group }}',
        home: '{{ item.home }}',
        shell: '{{ item.shell }}',
        system: true,
        create_home: false,
      },
      loop: w.users,
      loop_control: label('name'),
    },
    { name: 'packages', 'ansible.builtin.apt': { name: w.packages, state: 'present' } },
    {
      name: 'services',
      'ansible.builtin.systemd': { name: '{{ item.name }}', state: 'started', enabled: '{{ item.enabled | default(omit) }}' },
      loop: w.services,
      loop_control: label('name'),
    },
    {
      name: 'directories',
      'ansible.builtin.file': { path: '{{ item.path }}', state: 'directory', owner: '{{ item.owner }}', group: '{{ item.group }}', mode: '{{ item.mode }}' },
      loop: w.dirs,
      loop_control: label('path'),
    },
    {
      name: 'files',
      'ansible.builtin.copy': { dest: '{{ item.path }}', content: '{{ item.content }}', owner: 'root', group: 'root', mode: '{{ item.mode }}' },
      loop: w.files,
      loop_control: label('path'),
    },
    {
      name: 'templates',
      'ansible.builtin.template': { src: 'templates/{{ item.src }}', dest: '{{ item.path }}', owner: 'root', group: 'root', mode: '{{ item.mode }}' },
      loop: w.templates.map(({ path, src, mode }) => ({ path, src, mode })),
      loop_control: label('path'),
    },
    {
      name: 'lines',
      'ansible.builtin.lineinfile': { path: '{{ item.path }}', regexp: '{{ item.regexp }}', line: '{{ item.line }}', create: true },
      loop: w.lines,
      loop_control: label('line'),
    },
  ].filter((t) => !('loop' in t) || (t.loop as unknown[]).length > 0);
  const play = [{ name: 'bench', hosts: 'all', gather_facts: false, vars: w.vars, tasks }];
  const file = join(dir, 'playbook.yml');
  await writeFile(file, stringify(play, { lineWidth: 0 }));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Host-side snippets (run as root through `docker exec`, never over the measured SSH path).

/** Back to the state before any provisioning: managed paths, users and groups gone. */
export function resetScript(w: Workload): string {
  const users = w.users.map((u) => u.name).join(' ');
  const groups = w.groups.map((g) => g.name).join(' ');
  return `rm -rf ${ROOT} /etc/bench
for u in ${users}; do userdel "$u" 2>/dev/null || true; done
for g in ${groups}; do groupdel "$g" 2>/dev/null || true; done
exit 0`;
}

/** The files the "5% changed" scenario edits: ceil(5% of resources), spread over files and templates. */
export function driftedPaths(w: Workload): string[] {
  const all = [...w.files.map((f) => f.path), ...w.templates.map((t) => t.path)];
  const n = Math.min(all.length, Math.ceil(w.resources * 0.05));
  const step = all.length / n;
  return range(n).map((i) => all[Math.floor(i * step)]!);
}

export function driftScript(paths: string[]): string {
  return `for f in ${paths.join(' ')}; do printf 'drifted by the benchmark\\n' >>"$f"; done`;
}

/**
 * Everything the role manages, in a form two hosts can be compared by: type, owner, group and
 * mode of every managed path, checksums of every file, passwd/group entries, package and
 * service state. Timestamps are left out.
 */
export function digestScript(w: Workload): string {
  const users = w.users.map((u) => u.name).join(' ');
  const groups = w.groups.map((g) => g.name).join(' ');
  return `cd /
echo '## paths'; find ${ROOT} /etc/bench -printf '%p %y %u %g %m\\n' 2>&1 | sort
echo '## checksums'; find ${ROOT} /etc/bench -type f -exec sha256sum {} + 2>&1 | sort -k2
echo '## accounts'; getent passwd ${users}; getent group ${groups}
echo '## packages'; dpkg-query -W -f '\${Package} \${db:Status-Abbrev}\\n' ${w.packages.join(' ')} 2>&1
echo '## services'; for s in ${w.services.map((s) => s.name).join(' ')} ; do echo "$s $(systemctl is-active "$s") $(systemctl is-enabled "$s" 2>&1)"; done
exit 0`;
}

function range(n: number): number[] {
  return Array.from({ length: Math.max(0, n) }, (_, i) => i);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
