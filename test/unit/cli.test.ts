// The CLI's contract without a host: exit code 1 and a clear message for bad input, and
// nothing run. (Exit code 2 and real hosts are in test/integration/provision.test.ts.)
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKeel } from '../helpers/cli.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function project(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'keel-cli-'));
  dirs.push(root);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), text);
  }
  return root;
}

describe('keel CLI, bad input', () => {
  it('unknown environment: exit 1, lists the available ones', async () => {
    const root = project({ 'inventories/staging.yaml': 'hosts: {}\n' });
    const r = await runKeel(['provision', 'prod'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no inventory for environment "prod".*available: staging/);
  });

  it('malformed YAML: exit 1 with file:line:column', async () => {
    const root = project({ 'inventories/staging.yaml': 'hosts:\n  web1: {address: 10.0.0.1\n  web2: {}\n' });
    const r = await runKeel(['provision', 'staging'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/inventories\/staging\.yaml:\d+:\d+: /);
    expect(existsSync(join(root, '.keel', 'logs'))).toBe(false);
  });

  it('schema errors: a typo in a key and a wrong type, both reported, exit 1', async () => {
    const root = project({ 'inventories/staging.yaml': 'hosts:\n  web1: {adress: 10.0.0.1, port: twenty}\n' });
    const r = await runKeel(['provision', 'staging', '--output', 'json'], { root });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/staging\.yaml:2:\d+: unknown key "adress".*did you mean "address"/);
    expect(r.stderr).toMatch(/staging\.yaml:2:\d+: .*port/);
  });

  it('unknown role and unknown group: exit 1 with the location', async () => {
    const root = project({ 'inventories/staging.yaml': 'hosts:\n  web1: {address: 10.0.0.1, groups: [webz]}\ngroups:\n  web: {roles: [ngnix]}\n' });
    const r = await runKeel(['provision', 'staging'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/staging\.yaml:2:\d+: .*group "webz"/);
    expect(r.stderr).toMatch(/staging\.yaml:4:\d+: .*role "ngnix"/);
  });

  it('a bad role variable is refused before connecting, at its line in the inventory', async () => {
    const root = project({
      'inventories/staging.yaml':
        'hosts:\n  web1:\n    address: 10.0.0.1\n    groups: [web]\n    vars:\n      demo_port: 99999\ngroups:\n  web: {roles: [demo]}\n',
    });
    const r = await runKeel(['provision', 'staging'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/inventories\/staging\.yaml:6:\d+: variable "demo_port" \(role demo\) must be <= 65535, got 99999/);
  });

  it('a variable nothing declares or reads is a typo: exit 1 where it is written, with the closest name; x_ names are free', async () => {
    const role = [
      'variables:',
      '  database_url: {type: string, default: ""}',
      'resources:',
      '  - file: {path: "/tmp/{{site}}", content: "{{database_url}} {{#if tuning}}t{{/if}}"}',
      '    when: eq flavour "plain"',
    ].join('\n');
    const inventory = (vars: string, groupVars = '{}') =>
      [
        'vars:',
        '  site: a', // read by a template
        '  flavour: plain', // read by when:
        '  tuning: 1', // read by {{#if}}
        '  db_host: h', // read by another inventory variable
        '  database_url: "postgres://{{db_host}}/x"',
        vars,
        'hosts:',
        '  web1: {address: 10.0.0.1, groups: [web]}',
        '  db1: {address: 10.0.0.2, groups: [db]}',
        'groups:',
        '  web: {roles: [myapp]}',
        `  db: {roles: [other], vars: ${groupVars}}`,
      ].join('\n');
    const other = 'resources: []\n';
    const ok = project({ 'roles/myapp/role.yaml': role, 'roles/other/role.yaml': other, 'inventories/staging.yaml': inventory('  x_monitoring_tag: blue') });
    expect((await runKeel(['inventory', 'staging'], { root: ok })).code).toBe(0);

    const typo = project({
      'roles/myapp/role.yaml': role,
      'roles/other/role.yaml': other,
      'inventories/staging.yaml': inventory('  databse_url: oops', '{site: b}'),
    });
    const r = await runKeel(['provision', 'staging'], { root: typo });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'inventories/staging.yaml:7:3: variable "databse_url" is not declared or used by any role of the hosts it applies to (web1, db1) ' +
        '(did you mean "database_url"?)',
    );
    // A group variable is checked against the roles of that group's hosts only.
    expect(r.stderr).toContain('inventories/staging.yaml:13:31: variable "site" is not declared or used by any role of host db1');
    expect(r.stderr).toMatch(/x_databse_url/);
  });

  it('main() run in-process with its own output leaves process.stdout/stderr alone (no listener piles up)', async () => {
    const root = project({ 'inventories/staging.yaml': 'hosts: {}\n' });
    const before = [process.stdout.listenerCount('error'), process.stderr.listenerCount('error')];
    for (let i = 0; i < 12; i++) await runKeel(['provision', 'prod'], { root });
    expect([process.stdout.listenerCount('error'), process.stderr.listenerCount('error')]).toEqual(before);
  });

  it('usage errors exit 1; --help exits 0', async () => {
    const root = project({});
    expect((await runKeel(['provision'], { root })).code).toBe(1);
    expect((await runKeel(['frobnicate'], { root })).code).toBe(1);
    const help = await runKeel(['--help'], { root });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/provision \[options\] <env>/);
  });

  it('seed 001 INI inventory loads as it is (keel inventory -i)', async () => {
    const root = project({
      'ops/ansible/hosts_test':
        '[web]\n' +
        'web1-test ansible_host=192.168.56.10 ansible_user=vagrant env_branch=master database_url=postgresql+asyncpg://user:pass@localhost:5432/catalogage\n',
    });
    const r = await runKeel(['inventory', 'test', '-i', 'ops/ansible/hosts_test', '--output', 'json'], { root });
    // Variables no role reads only warn in an INI inventory (they may be Ansible's own);
    // database_url is role app's (a role this host does not have): not a typo.
    expect(r.stderr).toBe(
      [
        'ops/ansible/hosts_test:2:59: warning: variable "env_branch" is not declared or used by any role of host web1-test (an Ansible variable? ignored)',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc.hosts['web1-test'].connection).toMatchObject({ address: '192.168.56.10', user: 'vagrant', port: 22 });
    expect(doc.hosts['web1-test'].vars.env_branch).toBe('master');
  });

  it('a key file the inventory names but that does not exist: exit 1 at the inventory line, before connecting', async () => {
    const root = project({
      'inventories/staging.yaml': 'hosts:\n  web1: {address: 127.0.0.1, port: 1, key: keys/deploy_ed25519, groups: [web]}\ngroups:\n  web: {roles: [demo]}\n',
    });
    const r = await runKeel(['provision', 'staging'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: inventories/staging.yaml:2:3: host web1: key file ${join(root, 'inventories', 'keys', 'deploy_ed25519')} does not exist\n`,
    );
    expect(r.stderr).toMatch(/hint: fix the path in the inventory \(relative paths are relative to the inventory file\)/);
    expect(r.stdout).not.toMatch(/UNREACHABLE|refused/);
    expect(existsSync(join(root, '.keel', 'logs'))).toBe(false);
  });

  it('an Ansible INI inventory gives hosts no roles: provision says so and exits 1, nothing run', async () => {
    const root = project({ 'ops/hosts.ini': '[web]\nweb1 ansible_host=127.0.0.1 ansible_port=1\nweb2 ansible_host=127.0.0.1 ansible_port=1\n' });
    const r = await runKeel(['provision', 'test', '-i', 'ops/hosts.ini'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('note: web1 has no roles: nothing to apply on it\n');
    expect(r.stderr).toContain('note: web2 has no roles: nothing to apply on it\n');
    expect(r.stderr).toMatch(/error: ops\/hosts\.ini: nothing to apply: no host of test has a role\n/);
    expect(r.stderr).toMatch(/hint: an Ansible INI inventory cannot give hosts roles: keep it as it is and write inventories\/test\.yaml naming it: /);
    expect(r.stderr).toMatch(/ansible_inventory: "\.\.\/ops\/hosts\.ini", groups: \{web: \{roles: \[base, app, nginx\]\}\}/);
    expect(r.stdout).toBe('');
    expect(existsSync(join(root, '.keel', 'logs'))).toBe(false);
  });

  // The hint used to lead into "environment test has two inventories" (issue 26.14): an INI in
  // inventories/ must move out, and the YAML inventory names it. Following it works.
  it('an INI in inventories/: the hint moves it out and names it from a YAML inventory; following it loads the hosts with roles', async () => {
    const ini = '[web]\nweb1 ansible_host=127.0.0.1 ansible_port=1\n';
    const root = project({ 'inventories/test.ini': ini });
    const r = await runKeel(['provision', 'test'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/moved out of inventories\/, e\.g\. to ops\/ansible\/hosts_test/);
    expect(r.stderr).toMatch(/ansible_inventory: "\.\.\/ops\/ansible\/hosts_test"/);
    // As the hint says:
    rmSync(join(root, 'inventories', 'test.ini'));
    mkdirSync(join(root, 'ops', 'ansible'), { recursive: true });
    writeFileSync(join(root, 'ops', 'ansible', 'hosts_test'), ini);
    writeFileSync(join(root, 'inventories', 'test.yaml'), 'ansible_inventory: "../ops/ansible/hosts_test"\ngroups: {web: {roles: [base]}}\n');
    const inv = await runKeel(['inventory', 'test', '--output', 'json'], { root });
    expect(inv.code, inv.stderr).toBe(0);
    expect(JSON.stringify(inv.json())).toMatch(/"roles":\["base"\]/);
  });

  it('does not decrypt the vault when nothing needs a secret (no passphrase asked); does when a variable uses one', async () => {
    const root = project({
      'inventories/staging.yaml': 'vars: {greeting: hello}\nhosts:\n  web1: {address: 192.0.2.10}\n',
      // Not a real vault: decrypting it would fail, so a run that gets past it never tried.
      'secrets/staging.age': 'age-encryption.org/v1\n-> scrypt AAAA 18\nnot really\n',
    });
    const plain = await runKeel(['inventory', 'staging', '--output', 'json'], { root });
    expect(plain.code, plain.stderr).toBe(0);
    writeFileSync(join(root, 'inventories', 'staging.yaml'), 'vars: {greeting: "{{secrets.greeting}}"}\nhosts:\n  web1: {address: 192.0.2.10}\n');
    const needs = await runKeel(['inventory', 'staging', '--output', 'json'], { root });
    expect(needs.code).toBe(1);
    expect(needs.stderr).toMatch(/secrets\/staging\.age/);
  });
});

describe('keel CLI, interrupted', () => {
  // Ctrl-C while keel reads the inventory and the vault and compiles (before any host): it says
  // so and exits 130, rather than dying without a word.
  it('a signal during the preparation: exit 130, nothing run on any host', async () => {
    const root = project({
      'inventories/staging.yaml': 'hosts:\n  web1: {address: 127.0.0.1, port: 1, user: root, roles: [r]}\n',
      'roles/r/role.yaml': 'resources:\n  - file: {path: /tmp/keel-never, content: "x"}\n',
    });
    const ac = new AbortController();
    ac.abort('SIGINT');
    const r = await runKeel(['provision', 'staging'], { root, signal: ac.signal });
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/stopped while preparing: nothing was run on any host/);
  });
});
