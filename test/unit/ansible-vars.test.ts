// The pieces of reading an Ansible tree, without Ansible installed: which vars files Ansible
// reads, what keel does with Jinja it cannot evaluate, errors with file:line:column, and
// Vault-encrypted values (fixtures made with ansible-vault, test/fixtures/inventory/ansible-vault)
// that never show. ansible-tree.test.ts compares the whole against ansible-inventory.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { findVarsFiles } from '../../src/inventory/ansible-vars-files.js';
import { jinjaProblem } from '../../src/inventory/jinja.js';
import { loadInventory } from '../../src/inventory/load.js';
import { pyLiteralEval } from '../../src/inventory/py-literal.js';
import { parseAnsibleYaml } from '../../src/inventory/pyyaml.js';
import { runKeel } from '../helpers/cli.js';

const VAULT_FIXTURES = fileURLToPath(new URL('../fixtures/inventory/ansible-vault/', import.meta.url));
const dirs: string[] = [];

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'keel-ansible-vars-'));
  dirs.push(root);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), text);
  }
  return root;
}

beforeEach(() => {
  vi.stubEnv('KEEL_SSH_CONFIG', '/nonexistent/keel-ssh-config');
  vi.stubEnv('ANSIBLE_VAULT_PASSWORD_FILE', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const message = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('group_vars/ and host_vars/ files, found as Ansible finds them', () => {
  it('takes the first of NAME, NAME.yml, NAME.yaml, NAME.json; a directory whole, sorted, skipping hidden files, backups and other extensions', () => {
    const root = tree({
      'group_vars/web/10-main.yml': 'a: 1\n',
      'group_vars/web/02-first.yaml': 'a: 1\n',
      'group_vars/web/vault': 'a: 1\n',
      'group_vars/web/.hidden.yml': 'a: 1\n',
      'group_vars/web/main.yml~': 'a: 1\n',
      'group_vars/web/README.md': 'a: 1\n',
      'group_vars/web/sub/extra.json': '{"a": 1}\n',
      'group_vars/web/skipped.d/x.yml': 'a: 1\n',
      'group_vars/web.yml': 'a: 1\n',
      'group_vars/db.yaml': 'a: 1\n',
      'group_vars/db.json': 'a: 1\n',
      'host_vars/web1': 'a: 1\n',
    });
    const rel = (files: string[]) => files.map((f) => f.slice(root.length + 1));
    expect(rel(findVarsFiles(join(root, 'group_vars'), 'web'))).toEqual([
      'group_vars/web/02-first.yaml',
      'group_vars/web/10-main.yml',
      'group_vars/web/sub/extra.json',
      'group_vars/web/vault',
    ]);
    expect(rel(findVarsFiles(join(root, 'group_vars'), 'db'))).toEqual(['group_vars/db.yaml']);
    expect(rel(findVarsFiles(join(root, 'host_vars'), 'web1'))).toEqual(['host_vars/web1']);
    expect(findVarsFiles(join(root, 'group_vars'), 'nothing')).toEqual([]);
    expect(findVarsFiles(join(root, 'no_such_dir'), 'web')).toEqual([]);
  });

  it('reads YAML as Ansible (PyYAML, YAML 1.1) does', () => {
    const y = parseAnsibleYaml('a: yes\nb: On\nc: y\nd: 0777\ne: 09\nf: 1e3\ng: 1.0e+3\nh: 1:30\ni: 2024-01-02\nj: ~\nk: 0x1F\nl: .5\n', 'f.yml');
    expect(y.data).toEqual({ a: true, b: true, c: 'y', d: 511, e: '09', f: '1e3', g: 1000, h: 90, i: '2024-01-02', j: null, k: 31, l: 0.5 });
  });
});

describe('Ansible values with Jinja keel cannot evaluate', () => {
  const kinds: Record<string, 'var' | 'unevaluable'> = { app_user: 'var', app_dir: 'unevaluable', db: 'var' };
  const kind = (n: string) => kinds[n] ?? 'absent';
  it.each([
    ['/home/{{ app_user }}/site', undefined],
    ['{{ inventory_hostname }}', undefined],
    ['{{ db.host }}:5432', undefined],
    [
      '{{ ansible_env.HOME }}/x',
      { expression: '{{ ansible_env.HOME }}', keel: "write the path itself (the connection user's home, e.g. /home/deploy or /root)" },
    ],
    ['{{ ansible_default_ipv4.address }}', { expression: '{{ ansible_default_ipv4.address }}', why: expect.stringMatching(/an Ansible fact/) }],
    ['{{ app_dir }}/static', { expression: '{{ app_dir }}', why: 'it refers to app_dir, which keel cannot evaluate' }],
    ["{{ port | default('8000') }}", { why: 'the Jinja filter "default"', keel: '{{default port "8000"}}' }],
    ['{{ app_user | quote }}', { keel: '{{quote app_user}}' }],
    ['{{ names | join(",") }}', { keel: '{{join names ","}}' }],
    ['{{ app_user | upper }}', { why: 'the Jinja filter "upper"' }],
    ["{{ db['host'] }}", { keel: '{{db.host}}' }],
    ["{{ lookup('env', 'HOME') }}", { why: 'an Ansible lookup, run on the controller' }],
    ["{{ hostvars['db1'].ansible_host }}", { why: expect.stringMatching(/other hosts/) }],
    ['{{ groups.web }}', { why: expect.stringMatching(/other hosts/) }],
    ['{{ group_names }}', { keel: '{{host.groups}} (its list starts with "all")' }],
    ['{{ ansible_host }}', { keel: '{{host.address}}' }],
    ['{% if tls %}https{% endif %}', { expression: '{% if tls %}', why: 'a Jinja statement' }],
    ['{{ a ~ b }}', { why: 'a Jinja expression that is not a plain variable' }],
    ['x {{ unclosed', { why: 'an unclosed Jinja expression' }],
  ])('%j', (value, want) => {
    const p = jinjaProblem(value, kind);
    if (want === undefined) expect(p).toBeUndefined();
    else expect(p).toMatchObject(want);
  });

  it('looks inside lists and mappings', () => {
    expect(jinjaProblem({ a: ['x', { b: '{{ x | int }}' }] }, kind)).toMatchObject({ expression: '{{ x | int }}' });
  });
});

describe('errors in an Ansible tree carry file:line:column', () => {
  const load = (root: string) => loadInventory({ root, env: 'x', inventoryFile: 'hosts' });
  it.each([
    [{ 'group_vars/web.yml': 'a: 1\nb: [unclosed\n' }, /^group_vars\/web\.yml:3:1: YAML syntax error: /],
    [{ 'group_vars/web.yml': '- a\n- b\n' }, /^group_vars\/web\.yml:1:1: group_vars\/web\.yml must be a mapping of variable names to values$/],
    [{ 'group_vars/all.yml': 'ansible_port: http\n' }, /^group_vars\/all\.yml:1:1: "ansible_port" must be an integer between 1 and 65535, got "http"$/],
    [{ 'host_vars/web1.yml': 'ansible_become: sometimes\n' }, /^host_vars\/web1\.yml:1:1: "ansible_become" must be true or false, got "sometimes"$/],
  ])('%j', async (files, want) => {
    const root = tree({ hosts: '[web]\nweb1\n', ...files });
    expect(await message(load(root))).toMatch(want);
  });

  it('in an inventory in Ansible YAML format', async () => {
    const root = tree({ 'hosts.yml': 'all:\n  children:\n    web:\n      hostz:\n        web1:\n' });
    writeFileSync(join(root, 'x.yaml'), 'ansible_inventory: hosts.yml\n');
    expect(await message(loadInventory({ root, env: 'x', inventoryFile: 'x.yaml' }))).toBe(
      'hosts.yml:4:7: unexpected key "hostz" in group "web" (expected hosts, vars or children)',
    );
  });

  it('a keel inventory that names a playbook directory that is not one', async () => {
    const root = tree({ hosts: '[web]\nweb1\n', 'x.yaml': 'ansible_inventory: hosts\nansible_playbook_dir: ../nowhere\n' });
    expect(await message(loadInventory({ root, env: 'x', inventoryFile: 'x.yaml' }))).toMatch(
      /^x\.yaml:2:23: ansible_playbook_dir: \.\.\/nowhere is not a directory \(looked for /,
    );
    writeFileSync(join(root, 'y.yaml'), 'hosts: {}\nansible_playbook_dir: ops\n');
    expect(await message(loadInventory({ root, env: 'x', inventoryFile: 'y.yaml' }))).toBe(
      'y.yaml:2:1: "ansible_playbook_dir" needs "ansible_inventory" (the Ansible inventory it goes with)',
    );
  });

  it("keel's own file wins over a value keel cannot evaluate: nothing is left out then", async () => {
    const root = tree({ hosts: '[web]\nweb1\n', 'group_vars/web.yml': 'app_dir: "{{ ansible_env.HOME }}/site"\n' });
    writeFileSync(join(root, 'x.yaml'), 'ansible_inventory: hosts\nvars: {app_dir: /srv/site}\n');
    const web1 = (await loadInventory({ root, env: 'x', inventoryFile: 'x.yaml' })).hosts[0]!;
    expect(web1.vars['app_dir']).toBe('/srv/site');
    expect(web1.unevaluable).toBeUndefined();
    expect(web1.varSources!['app_dir']!.map((s) => s.label)).toEqual(['inventory group_vars/web', 'keel inventory vars']);
  });

  it('a connection variable keel cannot evaluate is refused, roles or not', async () => {
    const root = tree({ 'inventories/x.ini': '[web]\nweb1 ansible_host="{{ inventory_hostname }}.lan"\n' });
    const r = await runKeel(['inventory', 'x'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: inventories/x.ini:2:6: keel cannot evaluate "ansible_host" (host web1), which its connection needs: ' +
        '{{ inventory_hostname }}: keel does not render connection settings',
    );
    expect(r.stderr).toContain("hint: set the host's address in the keel inventory (it wins over the Ansible tree)");
  });
});

describe('Ansible Vault values in the tree (fixtures made with ansible-vault)', () => {
  const project = () => {
    const root = mkdtempSync(join(tmpdir(), 'keel-ansible-vault-'));
    dirs.push(root);
    cpSync(VAULT_FIXTURES, root, { recursive: true });
    writeFileSync(join(root, 'x.yaml'), 'ansible_inventory: tree/hosts\nansible_vault_password_file: vault-password\n');
    return root;
  };

  it('decrypts whole files and inline values; they are secrets: masked whole in every output, numbers too', async () => {
    const root = project();
    const secrets: unknown[] = [];
    const inv = await loadInventory({ root, env: 'x', inventoryFile: 'x.yaml', onSecret: (v) => secrets.push(v) });
    const web1 = inv.hosts[0]!;
    expect(web1.vars).toEqual({ site_title: 'Welcome', api_key: 'ak-Fixture-S3cret', db_password: 'pg-Fixture-S3cret', pin: 48213 });
    expect(web1.secretVars?.sort()).toEqual(['api_key', 'db_password', 'pin']);
    expect(secrets.sort()).toEqual([48213, 'ak-Fixture-S3cret', 'pg-Fixture-S3cret'].sort());
    for (const args of [[], ['--output', 'json'], ['--explain'], ['--explain', '--output', 'json']]) {
      const r = await runKeel(['inventory', 'x', '-i', 'x.yaml', ...args], { root });
      expect(r.code, r.stderr).toBe(0);
      for (const s of ['ak-Fixture-S3cret', 'pg-Fixture-S3cret', '48213']) expect(r.stdout + r.stderr, args.join(' ')).not.toContain(s);
    }
    const explained = await runKeel(['inventory', 'x', '-i', 'x.yaml', '--explain'], { root });
    expect(explained.stdout).toContain(
      '  pin: "******" (Ansible Vault)\n      from tree/group_vars/web/vault.yml:2:1 (inventory group_vars/web (Ansible Vault))\n',
    );
    expect(explained.stdout).toContain('  api_key: "******" (Ansible Vault)\n      from tree/group_vars/web/main.yml:2:1 (inventory group_vars/web)\n');
  });

  it('a wrong password names the file (and the line of an inline value); a broken decrypted file is not quoted', async () => {
    const root = project();
    writeFileSync(join(root, 'vault-password'), 'not the password\n');
    const inline = /^tree\/group_vars\/web\/main\.yml:2:1: cannot decrypt the !vault value of api_key in tree\/group_vars\/web\/main\.yml/;
    const whole = /^cannot decrypt tree\/group_vars\/web\/vault\.yml/;
    const m1 = await message(loadInventory({ root, env: 'x', inventoryFile: 'x.yaml' }));
    expect(m1).toMatch(/: wrong Ansible Vault password/);
    expect(inline.test(m1) || whole.test(m1), m1).toBe(true);
    writeFileSync(join(root, 'vault-password'), 'fixture vault password\n');
    writeFileSync(join(root, 'b.yaml'), 'ansible_inventory: broken/hosts\nansible_vault_password_file: vault-password\n');
    const m = await message(loadInventory({ root, env: 'x', inventoryFile: 'b.yaml' }));
    expect(m).toMatch(/^broken\/group_vars\/all\.yml:\d+:\d+: YAML syntax error \(\w+\) in the decrypted text$/);
    expect(m).not.toContain('very-secret-text');
  });

  it('a decrypted value keel cannot evaluate, which a role reads: refused without showing it', async () => {
    const root = project();
    writeFileSync(join(root, 'j.yaml'), 'ansible_inventory: jinja/hosts\nansible_vault_password_file: vault-password\ngroups:\n  web: {roles: [demo]}\n');
    const r = await runKeel(['inventory', 'j', '-i', 'j.yaml'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: jinja/host_vars/web1.yml:1:1: keel cannot evaluate "demo_root" (host web1), which a role reads: ' +
        'its value, decrypted from Ansible Vault, holds Jinja keel cannot evaluate',
    );
    expect(r.stderr + r.stdout).not.toMatch(/x-Secret-Path|ansible_env/);
  });
});

// Where python3 is (CI has it, for ansible-core), keel's reading of INI values and YAML scalars
// is checked against Python's own literal_eval and PyYAML, not against expectations.
const python = (() => {
  try {
    execFileSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!python && !process.env.CI)('against Python itself (needs python3 with PyYAML)', () => {
  const py = (code: string, input: string[]): unknown[] => JSON.parse(execFileSync('python3', ['-c', code, JSON.stringify(input)], { encoding: 'utf8' }));

  it("INI values: Python's ast.literal_eval", () => {
    const cases = ['true', 'True', 'False', 'None', '42', '-7', '007', '00', '1.5', '.5', '1.', '1e3', '1_000', '0x1F', '0o17', '0b101', '"42"', "'x'"];
    cases.push('"a" "b"', '[1, 2]', '[1, "a", [True]]', '(1,)', '(1)', '()', '1, 2', '{"a": 1, 2: [3]}', '{1, 2}', '1+2j', 'hello', 'hello world');
    cases.push('/usr/bin/python3', '-o ProxyJump=x', '1 # c', 'r"a\\nb"', '"a\\nb"', 'b"x"', 'f"x"', '--1', '+5', '-1.5e-3', '[1,]', '"open', '1__0', 'x=1');
    const want = py(
      'import ast, json, sys\nout = []\nfor s in json.loads(sys.argv[1]):\n' +
        '    try:\n        v = ast.literal_eval(s)\n        try: out.append({"value": json.loads(json.dumps(v))})\n' +
        '        except Exception: out.append({"unknown": True})\n    except Exception: out.append({"text": s})\nprint(json.dumps(out))',
      cases,
    ) as { value?: unknown; unknown?: true; text?: string }[];
    cases.forEach((c, i) => {
      const mine = pyLiteralEval(c);
      const w = want[i]!;
      if (w.unknown) expect(mine.kind, c).toBe('unknown');
      else if (w.text !== undefined) expect(mine.kind, c).toBe('not-a-literal');
      else expect(mine, c).toEqual({ kind: 'value', value: w.value });
    });
  });

  it("YAML scalars: PyYAML's resolver", () => {
    const cases = ['yes', 'No', 'on', 'OFF', 'y', 'n', 'true', 'TRUE', 'tRue', '0777', '00', '09', '0x1F', '0b11', '1_000', '1:30', '-1:30', '1e3', '1.0e+3'];
    cases.push('.5', '-.5', '1.', '+1', '~', 'null', 'Null', 'nULL', '', '2001-01-02', '12:30:45', '3.14', '0o17', '"quoted"', "'yes'");
    const want = py(
      'import json, sys, yaml\nprint(json.dumps([yaml.safe_load("v: " + s)["v"] if True else None for s in json.loads(sys.argv[1])], default=str))',
      cases,
    );
    cases.forEach((c, i) => expect((parseAnsibleYaml(`v: ${c}`, 'f').data as { v: unknown }).v, c).toEqual(want[i]));
  });
});
