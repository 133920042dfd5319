// A real team's Ansible tree (seed 001's layout: a playbook directory with group_vars/ and
// host_vars/, one directory per environment with its inventory and its own group_vars/ and
// host_vars/, Vault-encrypted files and inline !vault values), read by keel through
// `ansible_inventory:` and compared, host by host and variable by variable, with what Debian's
// ansible-inventory says about the same tree. Equal, except where keel names the difference
// itself: a value it cannot evaluate (Jinja), or an INI value it types differently.
//
// The fixtures are made with ansible-vault here; nothing Ansible would say is written down.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it, vi } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';
import type { Host, Inventory } from '../../src/inventory/types.js';
import { runKeel } from '../helpers/cli.js';

const has = (bin: string): boolean => {
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
// CI installs ansible-core (.ci/run): there a missing binary fails the test instead of skipping it.
const haveAnsible = has('ansible-inventory') && has('ansible-vault');
const run = haveAnsible || !!process.env.CI;

const PASSWORD = 'correct horse battery staple';
/** Every value the tree encrypts inline, by the envelope ansible-vault made for it. */
const inlinePlain = new Map<string, string>();

let root = '';
const ansibleEnv = () => {
  const { ANSIBLE_VAULT_PASSWORD_FILE: _none, ...env } = process.env;
  return { ...env, HOME: join(root, 'home'), ANSIBLE_LOCAL_TEMP: join(root, 'home', 'tmp'), ANSIBLE_NOCOLOR: '1' };
};

function write(rel: string, text: string): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
}

/** `ansible-vault encrypt_string` for each name=value: the YAML lines to put in a vars file. */
function inlineVault(values: Record<string, string>): string {
  const args = [...Object.keys(values).flatMap((name) => ['--name', name]), ...Object.values(values)];
  const out = execFileSync('ansible-vault', ['encrypt_string', '--vault-password-file', join(root, 'ops/ansible/vault-password'), ...args], {
    cwd: root,
    env: ansibleEnv(),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Each value: "name: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          hex..."
  const blocks = out.split(/\n(?=\S)/).filter((b) => b.trim());
  for (const block of blocks) {
    const name = block.split(':')[0]!.trim();
    const envelope = block
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter(Boolean)
      .join('\n');
    inlinePlain.set(envelope, values[name]!);
  }
  return out.trimEnd() + '\n';
}

function encryptWhole(...rels: string[]): void {
  execFileSync('ansible-vault', ['encrypt', '--vault-password-file', join(root, 'ops/ansible/vault-password'), ...rels.map((r) => join(root, r))], {
    env: ansibleEnv(),
    stdio: 'ignore',
  });
}

/** The tree, shaped like seed 001's (see README "Coming from Ansible"), with each Ansible rule
 *  keel must follow exercised by at least one variable. */
function buildTree(): void {
  write('ops/ansible/vault-password', PASSWORD + '\n');
  write('ops/ansible/playbook.yml', '- hosts: all\n  roles: [common]\n');
  // Playbook group_vars: every environment.
  write(
    'ops/ansible/group_vars/all.yml',
    [
      'app_name: catalogage',
      'db_user: catalogage',
      'ntp_server: ntp.playbook.example.org # beats the inventory group_vars/all (playbook over inventory)',
      'from_ini_all: playbook # beats [all:vars] (group_vars over the inventory file)',
      '',
    ].join('\n'),
  );
  write(
    'ops/ansible/group_vars/web.yml',
    [
      'app_port: 3579',
      'git_repo: https://git.example.org/catalogage.git',
      'app_dir: "{{ ansible_env.HOME }}/catalogage"',
      'static_root: "{{ app_dir }}/static"',
      'server_name: "{{ inventory_hostname }}"',
      'workers: "{{ app_workers | default(2) }}"',
      'db_url_template: "postgresql://{{ db_user }}@localhost/{{ app_name }}"',
      'docker_format: !unsafe "{{ .Names }}"',
      'packages: [nginx, "python3-venv"]',
      'limits: {nofile: 65536, nproc: 4096}',
      '',
    ].join('\n'),
  );
  write('ops/ansible/group_vars/db/main.yml', 'postgres_version: 15\npg_hba_mode: md5\n');
  write('ops/ansible/group_vars/db/.hidden.yml', 'hidden: true\n');
  write('ops/ansible/group_vars/db/main.yml~', 'backup: true\n');
  write('ops/ansible/group_vars/db/notes.txt', 'not: vars\n');
  write('ops/ansible/host_vars/web1.staging.example.org.yml', 'gunicorn_timeout: 60\nhost_level: playbook-host-vars\n');

  // Staging: INI.
  write(
    'ops/ansible/environments/staging/hosts',
    [
      '# staging, as the team keeps it',
      'web1.staging.example.org ansible_host=203.0.113.10 http_port=8080 flag=true ratio=1.5 quoted_num="42" motd="hello world"',
      '',
      '[web]',
      'web1.staging.example.org',
      'web2.staging.example.org:2222 host_level=inventory-line',
      '',
      '[db]',
      'db1.staging.example.org ansible_host=203.0.113.20 ansible_become=yes',
      'web2.staging.example.org',
      '',
      '[staging:children]',
      'web',
      'db',
      '',
      '[staging:vars]',
      'env_name=staging',
      'shared=staging',
      '',
      '[web:vars]',
      'shared=web',
      'from_ini_group=ini',
      'http_port=80',
      '',
      '[db:vars]',
      'shared=db',
      '',
      '[all:vars]',
      'ansible_user=deploy',
      'from_ini_all=ini',
      'ntp_server=ntp.ini.example.org',
      '',
    ].join('\n'),
  );
  write(
    'ops/ansible/environments/staging/group_vars/all.yaml',
    ['ntp_server: ntp.inventory.example.org', 'from_ini_group: all-file', 'monitoring: yes', 'umask: 0022', 'release: 1.10', 'build: 1e3', ''].join('\n'),
  );
  write(
    'ops/ansible/environments/staging/group_vars/web.yml',
    'tls_enabled: true\ngit_version: staging\napp_port: 8000 # the playbook group_vars/web wins\n' + inlineVault({ secret_key: 'dj-s3cret-staging' }),
  );
  write('ops/ansible/environments/staging/group_vars/web.yaml', 'tls_enabled: false # never read: web.yml is found first\n');
  write('ops/ansible/environments/staging/group_vars/staging', 'env_label: from-a-file-without-extension\n');
  write('ops/ansible/environments/staging/group_vars/db/10-main.yml', 'postgres_port: 5432\n');
  write('ops/ansible/environments/staging/group_vars/db/vault.yml', 'db_password: pg-S3cret-staging\nreplication_password: rep-S3cret\n');
  write('ops/ansible/environments/staging/group_vars/db/sub/extra', 'pg_extra: true\n');
  write('ops/ansible/environments/staging/host_vars/web1.staging.example.org', 'host_level: inventory-host-vars\nhttp_port: 8081\n');
  write('ops/ansible/environments/staging/host_vars/db1.staging.example.org.yml', 'ansible_port: 2200\n');
  write(
    'ops/ansible/environments/staging/secrets',
    'database_url: postgresql://catalogage:pg-S3cret-staging@localhost/catalogage\nsentry_dsn: https://k@sentry\n',
  );

  // Production: Ansible's YAML inventory format.
  write(
    'ops/ansible/environments/production/hosts.yml',
    [
      'all:',
      '  vars:',
      '    ansible_user: ops',
      '    env_name: production',
      '  children:',
      '    production:',
      '      children:',
      '        web:',
      '          hosts:',
      '            web[1:2].example.org:',
      '            web3.example.org:',
      '              ansible_port: 2203',
      "              motd: \"{{ lookup('file', '/etc/motd') }}\"",
      '          vars:',
      '            shared: web',
      '        app:',
      '          hosts:',
      '            web2.example.org:',
      '          vars:',
      '            shared: app',
      '            ansible_group_priority: 10',
      '        db:',
      '          hosts:',
      '            db.example.org: {ansible_host: 10.0.0.5, ansible_become: true}',
      '',
    ].join('\n'),
  );
  write('ops/ansible/environments/production/group_vars/web.json', '{"max_body_size": "20m", "tls_enabled": true, "git_version": "v1.4.2"}\n');
  write('ops/ansible/environments/production/group_vars/all/main.yml', 'backup_hour: 3\nsite_url: "https://{{ inventory_hostname }}/"\n');
  write('ops/ansible/environments/production/group_vars/all/vault', 'smtp_password: smtp-S3cret-prod\n');
  write(
    'ops/ansible/environments/production/host_vars/web3.example.org.yml',
    'host_level: production-host-vars\n' + inlineVault({ api_token: 'tok-S3cret-web3', deploy_key_passphrase: 'pass-S3cret-web3' }),
  );
  encryptWhole(
    'ops/ansible/environments/staging/group_vars/db/vault.yml',
    'ops/ansible/environments/staging/secrets',
    'ops/ansible/environments/production/group_vars/all/vault',
  );

  for (const [env, inv] of [
    ['staging', 'staging/hosts'],
    ['production', 'production/hosts.yml'],
  ]) {
    write(
      `inventories/${env}.yaml`,
      [
        `ansible_inventory: ../ops/ansible/environments/${inv}`,
        'ansible_playbook_dir: ../ops/ansible',
        'ansible_vault_password_file: ../ops/ansible/vault-password',
        '',
      ].join('\n'),
    );
  }
}

/** `ansible-inventory --list` on the tree, as the team runs ansible-playbook on it. */
function ansibleHostvars(inventory: string): Record<string, Record<string, unknown>> {
  const out = execFileSync(
    'ansible-inventory',
    ['-i', inventory, '--playbook-dir', 'ops/ansible', '--vault-password-file', 'ops/ansible/vault-password', '--list', '--vars'],
    { cwd: root, env: ansibleEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return (JSON.parse(out) as { _meta: { hostvars: Record<string, Record<string, unknown>> } })._meta.hostvars;
}

/** A value as ansible-inventory prints it, as the value Ansible uses: an inline vault value's
 *  plaintext (from the fixture), an !unsafe string's text (which keel must take literally). */
function plainOf(v: unknown, unsafe: () => void): unknown {
  if (v && typeof v === 'object' && '__ansible_vault' in v) {
    const envelope = String((v as { __ansible_vault: string }).__ansible_vault).trim();
    expect(inlinePlain.has(envelope), 'an inline vault value the tree made').toBe(true);
    return inlinePlain.get(envelope);
  }
  if (v && typeof v === 'object' && '__ansible_unsafe' in v) {
    unsafe();
    return (v as { __ansible_unsafe: string }).__ansible_unsafe;
  }
  return v;
}

const CONNECTION: Record<string, (h: Host) => unknown> = {
  ansible_host: (h) => h.connection.address,
  ansible_port: (h) => h.connection.port,
  ansible_user: (h) => h.connection.user,
  ansible_become: (h) => h.connection.become,
};

const ansibleBool = (v: unknown) => (typeof v === 'boolean' ? v : ['yes', 'true', 'on', '1'].includes(String(v).toLowerCase()));

interface Difference {
  host: string;
  name: string;
  ansible: unknown;
  keel: unknown;
  named: 'unevaluable' | 'typed' | 'no';
}

/** Every variable of every host, keel against Ansible. */
function compare(inv: Inventory, hostvars: Record<string, Record<string, unknown>>): Difference[] {
  expect(inv.hosts.map((h) => h.name).sort()).toEqual(Object.keys(hostvars).sort());
  const diffs: Difference[] = [];
  for (const h of inv.hosts) {
    const theirs = Object.fromEntries(
      Object.entries(hostvars[h.name]!).map(([k, v]) => [k, plainOf(v, () => expect(h.literalVars, `${h.name}: ${k} is !unsafe`).toContain(k))]),
    );
    for (const [name, read] of Object.entries(CONNECTION)) {
      if (!(name in theirs)) continue;
      const want = name === 'ansible_become' ? ansibleBool(theirs[name]) : theirs[name];
      expect(read(h), `${h.name}: connection from ${name}`).toEqual(want);
      expect(h.connectionVars?.[name]?.value, `${h.name}: ${name} as set`).toEqual(theirs[name]);
      delete theirs[name];
    }
    if (!('ansible_host' in hostvars[h.name]!)) expect(h.connection.address).toBe(h.name);
    if (!('ansible_port' in hostvars[h.name]!)) expect(h.connection.port).toBe(22);
    for (const name of new Set([...Object.keys(theirs), ...Object.keys(h.vars)])) {
      const mine = h.vars[name];
      if (name in theirs && name in h.vars && JSON.stringify(mine) === JSON.stringify(theirs[name])) continue;
      const unevaluable = h.unevaluable?.find((u) => u.name === name);
      const reads = h.varSources?.[name]?.at(-1)?.ansibleReadsAs;
      const named = unevaluable ? 'unevaluable' : reads && JSON.stringify(reads.value) === JSON.stringify(theirs[name]) ? 'typed' : 'no';
      diffs.push({ host: h.name, name, ansible: theirs[name], keel: mine, named });
    }
  }
  return diffs;
}

/** The line a location names holds the variable (file:line is right). */
function lineAt(file: string, line: number): string {
  return readFileSync(join(root, file), 'utf8').split('\n')[line - 1] ?? '';
}

describe.skipIf(!run)("a team's Ansible tree, against ansible-inventory (needs ansible-core)", () => {
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'keel-ansible-tree-'));
    mkdirSync(join(root, 'home', 'tmp'), { recursive: true });
    buildTree();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  beforeEach(() => {
    vi.stubEnv('KEEL_SSH_CONFIG', join(root, 'no-ssh-config'));
    vi.stubEnv('ANSIBLE_VAULT_PASSWORD_FILE', '');
  });
  afterEach(() => vi.unstubAllEnvs());

  for (const [env, inventory] of [
    ['staging', 'ops/ansible/environments/staging/hosts'],
    ['production', 'ops/ansible/environments/production/hosts.yml'],
  ] as const) {
    it(`${env}: every host's variables equal ansible-inventory's, except the values keel names`, async () => {
      const secrets: unknown[] = [];
      const inv = await loadInventory({ root, env, onSecret: (v) => secrets.push(v) });
      const hostvars = ansibleHostvars(inventory);
      const diffs = compare(inv, hostvars);
      expect(
        diffs.filter((d) => d.named === 'no'),
        'differences keel does not name',
      ).toEqual([]);

      // What keel names, it names right: the expression is in the value Ansible has, the
      // location is the line that sets the variable, and nothing named is used as written.
      for (const h of inv.hosts) {
        for (const u of h.unevaluable ?? []) {
          expect(JSON.stringify(hostvars[h.name]![u.name]), `${h.name} ${u.name}`).toContain(JSON.stringify(u.expression).slice(1, -1));
          expect(lineAt(u.location.file, u.location.line!), `${h.name} ${u.name} at ${u.location.file}:${u.location.line}`).toMatch(
            new RegExp(`^\\s*${u.name}\\s*:`),
          );
          expect(h.vars).not.toHaveProperty(u.name);
        }
        for (const [name, sources] of Object.entries(h.varSources ?? {})) {
          const win = sources.at(-1)!;
          if (win.label.includes('Ansible Vault')) continue; // lines of the decrypted text
          expect(lineAt(win.location.file, win.location.line!), `${h.name} ${name} at ${win.location.file}:${win.location.line}`).toMatch(
            new RegExp(`(^|\\s)${name}\\s*[:=]|^\\s*"?${name}"?\\s*:|"${name}":`),
          );
        }
      }
      // Every value decrypted from the tree is a secret, for the redactor.
      for (const h of inv.hosts) for (const name of h.secretVars ?? []) expect(secrets).toContain(h.vars[name]);
      console.log(
        `${env}: ${inv.hosts.length} hosts, ${inv.hosts.reduce((n, h) => n + Object.keys(hostvars[h.name]!).length, 0)} variables compared; named by keel: ` +
          diffs.map((d) => `${d.host} ${d.name} (${d.named})`).join(', '),
      );
    });
  }

  it('names the rules it follows, where Ansible would surprise a reader (precedence, YAML 1.1)', async () => {
    // These facts about Ansible are checked against ansible-inventory above; here they are
    // spelled out for the reader, from keel's side, with where each value comes from.
    const inv = await loadInventory({ root, env: 'staging' });
    const web1 = inv.hosts.find((h) => h.name === 'web1.staging.example.org')!;
    const web2 = inv.hosts.find((h) => h.name === 'web2.staging.example.org')!;
    const from = (h: Host, name: string) => h.varSources![name]!.at(-1)!.label;
    expect(from(web1, 'from_ini_group')).toBe('inventory group_vars/all'); // a group_vars/all file beats [web:vars]
    expect(from(web1, 'ntp_server')).toBe('playbook group_vars/all');
    expect(from(web1, 'app_port')).toBe('playbook group_vars/web');
    expect(from(web1, 'http_port')).toBe('inventory host_vars/web1.staging.example.org');
    expect(from(web1, 'host_level')).toBe('playbook host_vars/web1.staging.example.org');
    expect(from(web2, 'shared')).toBe('inventory file: group web'); // db and web: same depth, by name
    expect(web1.vars['monitoring']).toBe(true);
    expect(web1.vars['umask']).toBe(18);
    expect(web1.literalVars).toContain('docker_format');
    expect(web1.vars['tls_enabled']).toBe(true); // group_vars/web.yml, not web.yaml
    expect(from(web1, 'env_label')).toBe('inventory group_vars/staging');
    const prod = await loadInventory({ root, env: 'production' });
    expect(from(prod.hosts.find((h) => h.name === 'web2.example.org')!, 'shared')).toBe('inventory file: group app'); // ansible_group_priority
  });

  it('keel inventory --explain and --output json never show a decrypted value; a role that reads an unevaluable value is refused', async () => {
    const secretsOf = ['dj-s3cret-staging', 'pg-S3cret-staging', 'rep-S3cret', 'smtp-S3cret-prod', 'tok-S3cret-web3', 'pass-S3cret-web3'];
    for (const env of ['staging', 'production']) {
      for (const args of [['--explain'], ['--explain', '--output', 'json'], ['--output', 'json'], []]) {
        const r = await runKeel(['inventory', env, ...args], { root });
        expect(r.code, r.stderr).toBe(0);
        for (const s of secretsOf) expect(r.stdout + r.stderr, `${env} ${args.join(' ')}`).not.toContain(s);
      }
    }
    const listed = (await runKeel(['inventory', 'staging', '--output', 'json'], { root })).json().hosts['web1.staging.example.org'];
    expect(listed.not_evaluated.app_dir).toMatch(/^ops\/ansible\/group_vars\/web\.yml:3:1: \{\{ ansible_env\.HOME \}\}: an Ansible fact/);
    expect(listed.vars).not.toHaveProperty('app_dir');
    expect(listed.vars.secret_key).toBe('******');
    const r = await runKeel(['inventory', 'staging', '--explain'], { root });
    expect(r.stdout).toContain('  db_password: "******" (Ansible Vault)\n');
    expect(r.stdout).toContain(
      '  app_dir: NOT EVALUATED\n      from ops/ansible/group_vars/web.yml:3:1 (playbook group_vars/web)\n      {{ ansible_env.HOME }}: an Ansible fact',
    );
    expect(r.stdout).toMatch(/ {2}workers: NOT EVALUATED\n.*\n.*the Jinja filter "default"; in keel: \{\{default app_workers 2\}\}/);
    expect(r.stdout).toMatch(/ {2}flag: true\n.*\n {6}Ansible reads this text as "true"; keel as true/);
    expect(r.stdout).toContain('  ansible_user: "deploy" -> connection user\n      from ops/ansible/environments/staging/hosts:29:1 (inventory file: all)');

    // A role that reads app_dir: refused, where it is written, with the expression.
    write('inventories/roles.yaml', readFileSync(join(root, 'inventories/staging.yaml'), 'utf8') + 'groups:\n  web: {roles: [demo]}\n');
    write(
      'ops/ansible/environments/staging/host_vars/web2.staging.example.org.yml',
      'demo_root: "{{ app_dir }}/demo"\ndemo_title: "{{ inventory_hostname }}"\n',
    );
    try {
      const refused = await runKeel(['inventory', 'roles'], { root });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        'error: ops/ansible/environments/staging/host_vars/web2.staging.example.org.yml:1:1: keel cannot evaluate "demo_root" ' +
          '(host web2.staging.example.org), which a role reads: {{ app_dir }}: it refers to app_dir, which keel cannot evaluate',
      );
      expect(refused.stderr).not.toMatch(/demo_title/); // {{ inventory_hostname }} is keel's too
      // Left out, named either way: with today's warning where no role reads it, or on its own.
      expect(refused.stderr).toContain(
        'ops/ansible/group_vars/web.yml:3:1: warning: "app_dir" (hosts web1.staging.example.org, web2.staging.example.org) is left out, ' +
          'no role reads it: {{ ansible_env.HOME }}: an Ansible fact',
      );
      const workers = refused.stderr.split('\n').find((l) => l.startsWith('ops/ansible/group_vars/web.yml:6:1: warning: variable "workers" is not declared'));
      expect(workers).toMatch(/; its value is left out: \{\{ app_workers \| default\(2\) \}\}: the Jinja filter "default"$/);
      expect(refused.stderr).toMatch(/warning: variable "git_repo" is not declared or used by any role/); // today's warning
    } finally {
      rmSync(join(root, 'ops/ansible/environments/staging/host_vars/web2.staging.example.org.yml'));
      rmSync(join(root, 'inventories/roles.yaml'));
    }
  });

  it('keel secrets import-ansible takes the -e @secrets file (encrypted whole) and a vars file with !vault values', async () => {
    const pw = ['--ansible-password-file', join(root, 'ops/ansible/vault-password')];
    const view = (rel: string) =>
      execFileSync('ansible-vault', ['view', '--vault-password-file', join(root, 'ops/ansible/vault-password'), join(root, rel)], {
        env: ansibleEnv(),
        encoding: 'utf8',
      });
    process.env.KEEL_VAULT_PASSWORD = 'keel-vault-pass';
    try {
      let r = await runKeel(['secrets', 'import-ansible', 'staging', join(root, 'ops/ansible/environments/staging/secrets'), ...pw], { root });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toContain('pg-S3cret-staging');
      r = await runKeel(['secrets', 'view', 'staging'], { root });
      expect(r.stdout.trimEnd()).toBe(view('ops/ansible/environments/staging/secrets').trimEnd());

      r = await runKeel(['secrets', 'import-ansible', 'production', join(root, 'ops/ansible/environments/production/host_vars/web3.example.org.yml'), ...pw], {
        root,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('(3 keys, 2 of them encrypted inline)');
      const imported: [string, string][] = [
        ['api_token', 'tok-S3cret-web3'],
        ['deploy_key_passphrase', 'pass-S3cret-web3'],
        ['host_level', 'production-host-vars'],
      ];
      for (const [key, want] of imported) expect((await runKeel(['secrets', 'get', 'production', key], { root })).stdout).toBe(want + '\n');
      r = await runKeel(['secrets', 'import-ansible', 'qa', join(root, 'ops/ansible/group_vars/all.yml'), ...pw], { root });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/holds nothing encrypted with Ansible Vault/);
    } finally {
      delete process.env.KEEL_VAULT_PASSWORD;
    }
  });

  it('without the Vault password: an error naming the encrypted file and how to give the password, nothing half-loaded', async () => {
    write('inventories/nopw.yaml', 'ansible_inventory: ../ops/ansible/environments/staging/hosts\nansible_playbook_dir: ../ops/ansible\n');
    write('inventories/badpw.yaml', 'ansible_inventory: ../ops/ansible/environments/staging/hosts\nansible_vault_password_file: ../wrong-password\n');
    write('wrong-password', 'nope\n');
    try {
      await expect(loadInventory({ root, env: 'nopw' })).rejects.toThrow(/is encrypted with Ansible Vault, and keel has no password for it/);
      const r = await runKeel(['inventory', 'nopw'], { root });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/hint: give keel the Ansible Vault password: ansible_vault_password_file:/);
      expect(r.stdout).toBe('');
      await expect(loadInventory({ root, env: 'badpw' })).rejects.toThrow(/wrong Ansible Vault password/);
      vi.stubEnv('ANSIBLE_VAULT_PASSWORD_FILE', join(root, 'ops/ansible/vault-password'));
      const inv = await loadInventory({ root, env: 'nopw' });
      expect(inv.hosts.find((h) => h.name === 'db1.staging.example.org')!.secretVars).toEqual(['db_password', 'replication_password']);
    } finally {
      rmSync(join(root, 'inventories/nopw.yaml'));
      rmSync(join(root, 'inventories/badpw.yaml'));
    }
  });
});
