import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, ConfigErrors } from '../../src/errors.js';
import { detectFormat, inventoryToJSON, loadInventory, selectHosts } from '../../src/inventory/load.js';
import type { Host, Inventory } from '../../src/inventory/types.js';

const fixtures = fileURLToPath(new URL('../fixtures/inventory/', import.meta.url));
const project = path.join(fixtures, 'project');
const home = os.homedir();

beforeEach(() => {
  vi.stubEnv('KEEL_SSH_CONFIG', path.join(fixtures, 'no-such-ssh-config'));
  vi.stubEnv('SSH_AUTH_SOCK', '');
});
afterEach(() => vi.unstubAllEnvs());

const host = (inv: Inventory, name: string): Host => {
  const h = inv.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no host ${name}`);
  return h;
};

describe('keel YAML inventory', () => {
  const load = (extraVars?: Record<string, unknown>) =>
    loadInventory({
      root: project,
      env: 'staging',
      extraVars: extraVars && { values: extraVars, locations: Object.fromEntries(Object.keys(extraVars).map((k) => [k, { file: `-e ${k}=...` }])) },
    });

  it('orders groups ancestors first, then by appearance, with the implicit all', async () => {
    const inv = await load();
    expect(host(inv, 'web1').groups).toEqual(['all', 'monitored', 'web', 'web_eu']);
    expect(host(inv, 'web2').groups).toEqual(['all', 'web', 'web_us']);
    expect(host(inv, 'db1').groups).toEqual(['all', 'monitored', 'db']);
    expect(host(inv, 'bastion').groups).toEqual(['all']);
    expect(inv.groups.map((g) => g.name)).toEqual(['all', 'monitored', 'web', 'web_eu', 'web_us', 'db']);
    const webEu = inv.groups.find((g) => g.name === 'web_eu')!;
    expect(webEu).toMatchObject({ serial: '50%', maxFailPercentage: 30, location: { file: 'inventories/staging.yaml', line: 46, column: 3 } });
  });

  it('lists roles from groups (ancestors first) then the host, de-duplicated', async () => {
    const inv = await load();
    expect(host(inv, 'web1').roles).toEqual(['node_exporter', 'base', 'nginx', 'app', 'certbot', 'extra_role']);
    expect(host(inv, 'web2').roles).toEqual(['base', 'nginx', 'app']);
    expect(host(inv, 'db1').roles).toEqual(['node_exporter', 'base', 'postgres']);
  });

  it('merges vars: env < ancestor group < child group < host < extra vars, shallowly', async () => {
    const inv = await load({ region: 'cli' });
    const web1 = host(inv, 'web1');
    expect(web1.vars).toEqual({
      app_name: 'catalogage', // env
      log_level: 'debug', // web (ancestor) beats monitored (earlier, unrelated) and env
      gunicorn_workers: 3, // host beats env
      settings: { debug: false, cache: 'redis' },
      server_name: 'eu.example.org', // web_eu (child) beats web
      region: 'cli', // extra vars beat group
    });
    expect(host(inv, 'db1').vars['log_level']).toBe('warning'); // group beats env
    expect(host(inv, 'db1').vars['settings']).toEqual({ debug: true }); // replaced, not merged
    expect(host(inv, 'web2').vars['server_name']).toBe('example.org'); // inherited through children
    expect(web1.varLocations).toMatchObject({
      app_name: { file: 'inventories/staging.yaml', line: 3, column: 3 },
      gunicorn_workers: { file: 'inventories/staging.yaml', line: 22, column: 7 },
      log_level: { file: 'inventories/staging.yaml', line: 42, column: 38 },
      server_name: { file: 'inventories/staging.yaml', line: 48, column: 12 },
      region: { file: '-e region=...' },
    });
    expect(inv.vars).toEqual({ app_name: 'catalogage', log_level: 'info', gunicorn_workers: 2, settings: { debug: false, cache: 'redis' } });
  });

  it('resolves connections: defaults < env < group < host, with jump chains', async () => {
    const inv = await load();
    const bastion = {
      address: '198.51.100.1',
      port: 2222,
      user: 'jump',
      keyFiles: [path.join(home, '.ssh/id_ed25519')],
      agent: false,
      jump: [],
      connectTimeoutMs: 5000,
      become: true,
      becomeUser: 'root',
      becomePasswordVar: 'become_password',
    };
    expect(host(inv, 'bastion').connection).toEqual(bastion);
    expect(host(inv, 'web1').connection).toEqual({ ...bastion, address: '203.0.113.10', port: 22, user: 'webadmin', jump: [bastion] });
    const web2 = host(inv, 'web2').connection;
    expect(web2.keyFiles).toEqual([path.join(project, 'inventories/keys/web2_ed25519'), '/etc/keel/fallback_key']);
    expect(web2.jump.map((j) => `${j.user}@${j.address}:${j.port}`)).toEqual(['ops@gw.example.net:2022', 'jump@198.51.100.1:2222']);
    expect(web2).toMatchObject({ port: 2200, user: 'webadmin', becomeUser: 'app', becomePasswordVar: 'vault_web2_sudo' });
    expect(host(inv, 'db1').connection).toMatchObject({ user: 'deploy', port: 22, connectTimeoutMs: 30000 });
  });

  it('uses built-in defaults when nothing is set', async () => {
    vi.stubEnv('SSH_AUTH_SOCK', '/tmp/agent.sock');
    const dir = await tempProject({ 'inventories/dev.yaml': 'hosts:\n  box:\n' });
    const inv = await loadInventory({ root: dir, env: 'dev' });
    expect(inv.hosts[0]!.connection).toEqual({
      address: 'box',
      port: 22,
      user: os.userInfo().username,
      keyFiles: [],
      agent: true,
      jump: [],
      connectTimeoutMs: 10_000,
      become: false,
      becomeUser: 'root',
      becomePasswordVar: 'become_password',
    });
  });

  it('reads the Vagrant ssh-config named by ssh_config/ssh_host and honours ~/.ssh/config aliases', async () => {
    vi.stubEnv('KEEL_SSH_CONFIG', path.join(fixtures, 'ssh_config'));
    const inv = await loadInventory({ root: project, env: 'local' });
    expect(host(inv, 'vagrant').connection).toMatchObject({
      address: '127.0.0.1',
      port: 2222,
      user: 'vagrant',
      become: true,
      sshConfigHost: 'default',
      keyFiles: ['/home/alice/projects/catalogage/.vagrant/machines/default/virtualbox/private_key'],
    });
    // ~/.ssh/config fills only what the inventory leaves unset (port 2200 comes from the inventory).
    expect(host(inv, 'alias1').connection).toMatchObject({
      address: 'alias1.internal.example.net',
      port: 2200,
      user: 'fallback',
      keyFiles: [path.join(home, '.ssh/key with space'), path.join(home, '.ssh/id_default')],
    });
    const aliased = host(inv, 'aliased').connection;
    expect(aliased).toMatchObject({ address: '10.1.2.3', user: 'explicit', port: 2200 });
    expect(aliased.sshConfigHost).toBeUndefined();
    expect(aliased.jump).toMatchObject([{ address: 'bastion.example.net', user: 'admin', port: 22 }]);
  });

  it('loads an explicit --inventory file, YAML or INI by extension or content', async () => {
    const inv = await loadInventory({ root: project, env: 'whatever', inventoryFile: 'inventories/staging.yaml' });
    expect(inv.hosts).toHaveLength(4);
    expect(detectFormat('hosts', '[web]\nweb1\n')).toBe('ini');
    expect(detectFormat('hosts', '# c\nweb1 ansible_host=1.2.3.4\n')).toBe('ini');
    expect(detectFormat('hosts', 'hosts:\n  web1:\n')).toBe('yaml');
    expect(detectFormat('x.cfg', 'hosts:\n')).toBe('ini');
    expect(detectFormat('x.yml', '[web]\n')).toBe('yaml');
  });
});

describe('selectHosts', () => {
  it('selects by host and by group (through children), in inventory order', async () => {
    const inv = await loadInventory({ root: project, env: 'staging' });
    const names = (limit?: string[]) => selectHosts(inv, limit).map((h) => h.name);
    expect(names()).toEqual(['bastion', 'web1', 'web2', 'db1']);
    expect(names(['web'])).toEqual(['web1', 'web2']);
    expect(names(['db1', 'web_eu'])).toEqual(['web1', 'db1']);
    expect(names(['web_us', 'web2'])).toEqual(['web2']);
    expect(names(['all'])).toHaveLength(4);
  });

  it('rejects an unknown name, listing the valid ones', async () => {
    const inv = await loadInventory({ root: project, env: 'staging' });
    expect(() => selectHosts(inv, ['web3'])).toThrow(
      'unknown host or group "web3" in --limit (did you mean "web1"?); hosts: bastion, web1, web2, db1; groups: all, monitored, web, web_eu, web_us, db',
    );
    const err = catchSync(() => selectHosts(inv, ['nope', 'zzz']));
    expect(err).toBeInstanceOf(ConfigErrors);
    expect((err as ConfigErrors).errors).toHaveLength(2);
  });
});

describe('inventoryToJSON', () => {
  it('passes every variable value through mask', async () => {
    const inv = await loadInventory({
      root: project,
      env: 'staging',
      extraVars: { values: { db_password: 's3cret' }, locations: { db_password: { file: '-e db_password=...' } } },
    });
    const json = inventoryToJSON(inv, (v) => (v === 's3cret' ? '******' : v)) as any;
    expect(json.hosts.web1.vars.db_password).toBe('******');
    expect(json.hosts.web1.connection.jump).toEqual(['jump@198.51.100.1:2222']);
    expect(json.groups.web.hosts).toEqual(['web1', 'web2']);
    expect(json.groups.web_eu).toMatchObject({ serial: '50%', max_fail_percentage: 30 });
    const seen: unknown[] = [];
    inventoryToJSON(inv, (v) => (seen.push(v), v));
    expect(seen).toContain('eu.example.org');
    expect(JSON.stringify(inventoryToJSON(inv, () => 'M'))).not.toContain('catalogage');
  });
});

describe('inventory errors', () => {
  const FILE = 'inventories/staging.yaml';

  async function errorsFor(yaml: string, opts: { knownRoles?: string[] } = {}): Promise<string[]> {
    const dir = await tempProject({ [FILE]: yaml });
    const err = await loadInventory({ root: dir, env: 'staging', ...opts }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    if (err instanceof ConfigError) return [err.message];
    throw new Error(`expected a ConfigError, got ${String(err)}`);
  }

  it('names an unknown key and suggests the right one', async () => {
    expect(await errorsFor('hosts:\n  web1:\n    adress: 203.0.113.10\n')).toEqual([
      `${FILE}:3:5: unknown key "adress" in host "web1" (did you mean "address"?)`,
    ]);
    expect(await errorsFor('hosts: {}\ngroups:\n  web:\n    connection: {usr: x}\n')).toEqual([
      `${FILE}:4:18: unknown key "usr" in the connection of group "web" (did you mean "user"?)`,
    ]);
    expect(await errorsFor('hosts: {}\ncolour: blue\n')).toEqual([
      `${FILE}:2:1: unknown key "colour" in the inventory (expected one of: known_hosts, ansible_inventory, ansible_inventory_script, ansible_playbook_dir, ` +
        'ansible_vault_password_file, vars, connection, hosts, groups)',
    ]);
  });

  it('says what a value should be, and reports every problem at once', async () => {
    const yaml = [
      'hosts:', //                                  1
      '  web1:', //                                 2
      '    address: 203.0.113.10', //               3
      '    port: twenty-two', //                    4
      '    become: yes', //                         5
      '    key: [~/.ssh/a, 5]', //                  6
      'groups:', //                                 7
      '  web: {serial: 0, roles: base}', //         8
    ].join('\n');
    // All of them, in the order of the file (ajv finds them in schema order).
    expect(await errorsFor(yaml)).toEqual([
      `${FILE}:4:11: "port" must be an integer between 1 and 65535, got "twenty-two"`,
      `${FILE}:5:13: "become" must be true or false, got "yes"`,
      `${FILE}:6:10: "key" must be a private key file, or a list of them, got a list`,
      `${FILE}:8:17: "serial" must be a number of hosts (at least 1) or a percentage like "30%", got 0`,
      `${FILE}:8:27: "roles" must be a list of role names, got "base"`,
    ]);
    expect(await errorsFor('hosts:\n  web1:\n    groups: [web, 3]\n')).toEqual([`${FILE}:3:19: "groups[1]" must be a string, got 3`]);
  });

  it('requires hosts', async () => {
    expect(await errorsFor('vars: {a: 1}\n')).toEqual([
      `${FILE}:1:1: missing key "hosts" in the inventory (or "ansible_inventory": an Ansible INI file to take them from; ` +
        'or "ansible_inventory_script": a dynamic inventory script)',
    ]);
  });

  it('reports YAML syntax errors with the parser position', async () => {
    expect(await errorsFor('hosts:\n  web1: {address: 1.2.3.4\n  web2: {}\n')).toEqual([
      `${FILE}:3:3: YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }`,
    ]);
    expect(await errorsFor('hosts:\n  web1:\n    address: "203.0.113.10\n')).toEqual([`${FILE}:4:1: YAML syntax error: Missing closing "quote`]);
  });

  it('reports duplicate hosts at the second definition', async () => {
    expect(await errorsFor('hosts:\n  web1: {}\n  web2: {}\n  web1: {address: x}\n')).toEqual([`${FILE}:4:3: duplicate host "web1" (first defined at line 2)`]);
  });

  it('reports unknown groups with the known ones', async () => {
    const yaml = 'hosts:\n  web1:\n    groups: [web, dbs]\ngroups:\n  web: {children: [web_eu]}\n  db: {}\n';
    expect(await errorsFor(yaml)).toEqual([
      `${FILE}:3:19: unknown group "dbs" in the groups of host "web1" (did you mean "db"? known groups: web, db)`,
      `${FILE}:5:20: unknown group "web_eu" in the children of group "web" (known groups: web, db)`,
    ]);
  });

  it('reports group cycles', async () => {
    const yaml = 'hosts: {}\ngroups:\n  a: {children: [b]}\n  b:\n    children:\n      - c\n  c: {children: [a]}\n';
    expect(await errorsFor(yaml)).toEqual([`${FILE}:7:18: group cycle: a -> b -> c -> a (a group cannot contain itself through children)`]);
  });

  it('reports unknown roles where they are written', async () => {
    const yaml = 'hosts:\n  web1:\n    roles: [nginx, ngnix]\ngroups:\n  web:\n    roles: [base, postgress]\n';
    expect(await errorsFor(yaml, { knownRoles: ['base', 'nginx', 'postgres'] })).toEqual([
      `${FILE}:3:20: unknown role "ngnix" in host "web1" (did you mean "nginx"? known roles: base, nginx, postgres)`,
      `${FILE}:6:19: unknown role "postgress" in group "web" (did you mean "postgres"? known roles: base, nginx, postgres)`,
    ]);
  });

  it('reports a jump host cycle and a malformed jump host', async () => {
    expect(await errorsFor('hosts:\n  a: {jump: b}\n  b: {jump: a}\n')).toEqual([`${FILE}:3:13: jump host cycle: a -> b -> a`]);
    expect(await errorsFor('hosts:\n  a: {jump: "u@h:99999"}\n')).toEqual([
      `${FILE}:2:13: invalid jump host "u@h:99999": expected a host name of this inventory or "user@address:port"`,
    ]);
  });

  it('reports a missing ssh_config file or alias', async () => {
    const [missingFile, noConfig] = await errorsFor('hosts:\n  vm: {ssh_config: nope.ssh-config}\n  box: {ssh_host: zz}\n');
    expect(missingFile).toMatch(new RegExp(`^${FILE}:2:20: SSH config file not found: nope.ssh-config \\(looked for .*/inventories/nope.ssh-config\\)$`));
    expect(noConfig).toBe(`${FILE}:3:3: ssh_host "zz": no SSH config file to look it up in`);
    const dir = await tempProject({
      [FILE]: 'hosts:\n  vm:\n    ssh_config: vagrant.ssh-config\n    ssh_host: web\n',
      'inventories/vagrant.ssh-config': 'Host default\n  HostName 127.0.0.1\n',
    });
    await expect(loadInventory({ root: dir, env: 'staging' })).rejects.toThrow(`${FILE}:3:17: no "Host" entry for "web" in vagrant.ssh-config`);
  });

  it('uses isKnownRole when given', async () => {
    const dir = await tempProject({ [FILE]: 'hosts:\n  web1: {roles: [app, mystery]}\n' });
    await expect(loadInventory({ root: dir, env: 'staging', isKnownRole: (r) => r === 'app' })).rejects.toThrow(
      `${FILE}:2:23: unknown role "mystery" in host "web1"`,
    );
  });

  it('reports an --inventory file that does not exist', async () => {
    await expect(loadInventory({ root: project, env: 'x', inventoryFile: 'nope/hosts' })).rejects.toThrow('nope/hosts: cannot read inventory: file not found');
  });

  it('names the environments that exist', async () => {
    await expect(loadInventory({ root: project, env: 'prod' })).rejects.toThrow(
      'no inventory for environment "prod": expected inventories/prod.yaml or inventories/prod.ini (available: local, staging)',
    );
  });
});

async function tempProject(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keel-inv-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  cleanup.push(dir);
  return dir;
}
const cleanup: string[] = [];
afterEach(async () => {
  for (const dir of cleanup.splice(0)) await rm(dir, { recursive: true, force: true });
});

function catchSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('role instances in the inventory', () => {
  const FILE = 'inventories/staging.yaml';
  const load = async (yaml: string) => loadInventory({ root: await tempProject({ [FILE]: yaml }), env: 'staging' });
  const errorsOf = async (yaml: string): Promise<string[]> => {
    const err = await load(yaml).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    if (err instanceof ConfigError) return [err.message];
    throw new Error(`expected a ConfigError, got ${String(err)}`);
  };

  it('reads {role, name, vars} entries: one instance each, a group and its host merged key by key', async () => {
    const inv = await load(
      [
        'hosts:',
        '  w1:',
        '    groups: [workers]',
        '    roles:',
        '      - {role: daemon, name: recalc, vars: {daemon_command: "python3 recalc.py --fast"}}',
        'groups:',
        '  workers:',
        '    roles:',
        '      - base',
        '      - {role: daemon, name: recalc, vars: {daemon_command: "python3 recalc.py", daemon_user: app}}',
        '      - {role: daemon, name: notify, vars: {daemon_command: "python3 notify.py"}}',
      ].join('\n'),
    );
    const h = host(inv, 'w1');
    expect(h.roles).toEqual(['base', 'daemon']);
    expect(h.roleInstances!.map((i) => [i.role, i.name, i.vars])).toEqual([
      ['base', undefined, {}],
      ['daemon', 'recalc', { daemon_command: 'python3 recalc.py --fast', daemon_user: 'app' }],
      ['daemon', 'notify', { daemon_command: 'python3 notify.py' }],
    ]);
    expect(h.roleInstances![1]!.varLocations['daemon_command']).toEqual({ file: FILE, line: 5, column: 45 });
    expect((inventoryToJSON(inv, (v) => v) as any).hosts.w1.roles).toEqual([
      'base',
      { role: 'daemon', name: 'recalc', vars: { daemon_command: 'python3 recalc.py --fast', daemon_user: 'app' } },
      { role: 'daemon', name: 'notify', vars: { daemon_command: 'python3 notify.py' } },
    ]);
    const defs = inv.varDefinitions!.filter((d) => d.instance);
    expect(defs.map((d) => [d.name, d.instance, d.hosts])).toContainEqual(['daemon_user', { role: 'daemon', name: 'recalc' }, ['w1']]);
  });

  it('refuses a role listed twice without names, a duplicate instance name, and unknown keys, with their positions', async () => {
    expect(await errorsOf('hosts:\n  w1:\n    roles: [daemon, {role: daemon, vars: {a: 1}}]\n')).toEqual([
      `${FILE}:3:28: role "daemon" is listed twice in the roles of host "w1": to use it twice, give each use a name ({role: daemon, name: ..., vars: {...}})`,
    ]);
    expect(await errorsOf('hosts:\n  w1:\n    roles: [{role: t, name: a}, {role: t, name: a}]\n')).toEqual([
      `${FILE}:3:40: instance "t[a]" is listed twice in the roles of host "w1": instance names must differ`,
    ]);
    expect(await errorsOf('hosts:\n  w1:\n    roles: [{role: t, nmae: a}]\n')).toEqual([
      `${FILE}:3:23: unknown key "nmae" in roles[0] of host "w1" (did you mean "name"?)`,
    ]);
    expect(await errorsOf('hosts:\n  w1:\n    roles: [{name: a}]\n')).toEqual([`${FILE}:3:13: missing key "role" in roles[0] of host "w1"`]);
    expect(await errorsOf('hosts:\n  w1:\n    roles: [{role: t, name: "a b"}]\n')).toEqual([
      `${FILE}:3:29: "name" must be an instance name (letters, digits, _ . -), got "a b"`,
    ]);
  });
});

describe('a YAML inventory that takes an Ansible INI inventory (ansible_inventory:)', () => {
  it('keeps the INI hosts, groups and vars, and adds roles, vars and known_hosts from the YAML', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'keel-inv-ansible-'));
    try {
      mkdirSync(path.join(dir, 'inventories'));
      mkdirSync(path.join(dir, 'ops', 'ansible'), { recursive: true });
      // Seed 001's hosts_test, as the team has it for Ansible.
      writeFileSync(
        path.join(dir, 'ops', 'ansible', 'hosts_test'),
        '[web]\n' +
          'web1-test ansible_host=192.168.56.10 ansible_user=vagrant env_branch=master database_url=postgresql+asyncpg://user:pass@localhost:5432/catalogage\n',
      );
      writeFileSync(
        path.join(dir, 'inventories', 'test.yaml'),
        [
          'ansible_inventory: ../ops/ansible/hosts_test',
          'known_hosts: ../known_hosts',
          'vars: {app_name: catalogage}',
          'groups:',
          '  web: {roles: [base, app], vars: {app_server: uvicorn}}',
          '',
        ].join('\n'),
      );
      const inv = await loadInventory({ root: dir, env: 'test' });
      const h = inv.hosts[0]!;
      expect(inv.hosts.map((x) => x.name)).toEqual(['web1-test']);
      expect(h.roles).toEqual(['base', 'app']);
      expect(h.connection).toMatchObject({ address: '192.168.56.10', user: 'vagrant' });
      expect(h.vars).toMatchObject({
        app_name: 'catalogage',
        app_server: 'uvicorn',
        database_url: 'postgresql+asyncpg://user:pass@localhost:5432/catalogage',
        env_branch: 'master',
      });
      expect(inv.knownHostsFile).toBe(path.join(dir, 'known_hosts'));
      const env = inv.varDefinitions!.find((d) => d.name === 'env_branch')!;
      expect(env).toMatchObject({ fromAnsible: true, location: { file: 'ops/ansible/hosts_test', line: 2 } });
      writeFileSync(path.join(dir, 'inventories', 'test.yaml'), 'ansible_inventory: ../ops/ansible/nope\n');
      await expect(loadInventory({ root: dir, env: 'test' })).rejects.toThrow(
        /inventories\/test\.yaml:1:\d+: ansible_inventory: cannot read \.\.\/ops\/ansible\/nope \(file not found/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
