import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { iniValue, proxyJumpOf, readIniInventory } from '../../src/inventory/ini.js';
import { loadInventory } from '../../src/inventory/load.js';
import type { Host, Inventory } from '../../src/inventory/types.js';

const fixtures = fileURLToPath(new URL('../fixtures/inventory/', import.meta.url));
const home = os.homedir();

beforeEach(() => {
  vi.stubEnv('KEEL_SSH_CONFIG', path.join(fixtures, 'no-such-ssh-config'));
  vi.stubEnv('SSH_AUTH_SOCK', '');
});
afterEach(() => vi.unstubAllEnvs());

const host = (inv: Inventory, name: string): Host => inv.hosts.find((h) => h.name === name)!;

describe('Ansible INI inventory', () => {
  it('loads the seed hosts_test line as it is', async () => {
    const inv = await loadInventory({ root: fixtures, env: 'test', inventoryFile: 'hosts_test' });
    expect(inv.hosts).toHaveLength(1);
    const web1 = inv.hosts[0]!;
    expect(web1.name).toBe('web1-test');
    expect(web1.groups).toEqual(['all', 'web']);
    expect(web1.connection).toMatchObject({ address: '192.168.56.10', user: 'vagrant', port: 22, become: false });
    expect(web1.vars).toEqual({
      env_branch: 'master',
      database_url: 'postgresql+asyncpg://user:pass@localhost:5432/catalogage',
    });
    expect(web1.location).toEqual({ file: 'hosts_test', line: 2, column: 1 });
    expect(web1.varLocations?.['database_url']).toEqual({ file: 'hosts_test', line: 2, column: 77 });
    expect(inv.groups.map((g) => g.name)).toEqual(['all', 'web']);
  });

  it('reads groups, children, vars sections, ranges, ports and connection variables', async () => {
    const inv = await loadInventory({ root: fixtures, env: 'prod', inventoryFile: 'ansible/production.ini' });
    expect(inv.hosts.map((h) => h.name)).toEqual(['ungrouped-box', 'web01.example.org', 'web02.example.org', 'web03.example.org', 'edge.example.org', 'db1']);
    expect(host(inv, 'ungrouped-box').groups).toEqual(['all', 'ungrouped']);
    expect(host(inv, 'web02.example.org').groups).toEqual(['all', 'prod', 'web']);
    expect(host(inv, 'web02.example.org').connection).toMatchObject({ address: 'web02.example.org', user: 'deploy' });

    const edge = host(inv, 'edge.example.org');
    expect(edge.connection).toMatchObject({ port: 2222, user: 'admin' }); // [all:vars] ansible_user
    expect(edge.vars).toEqual({
      app_name: 'catalogage',
      ntp_server: 'ntp.example.org',
      max_conns: 100,
      quoted: '01',
      http_port: 8080, // host beats [web:vars]
      motd: 'hello world',
      enabled: true,
    });
    expect(host(inv, 'web01.example.org').vars['http_port']).toBe(80);

    const db1 = host(inv, 'db1');
    expect(db1.groups).toEqual(['all', 'prod', 'db']);
    expect(db1.connection).toMatchObject({
      address: '10.0.0.5',
      port: 5522,
      user: 'admin',
      become: true,
      becomeUser: 'postgres',
      keyFiles: [path.join(home, '.ssh/db_key')],
    });
    expect(db1.connection.jump).toMatchObject([{ user: 'ops', address: 'bastion.example.org', port: 22 }]);
    // Connection variables are not vars; other ansible_* variables are.
    expect(Object.keys(db1.vars).filter((k) => k.startsWith('ansible_'))).toEqual(['ansible_python_interpreter']);
    expect(inv.vars).toEqual({ app_name: 'catalogage' });
    expect(inv.groups.find((g) => g.name === 'prod')).toMatchObject({
      children: ['web', 'db'],
      vars: { ntp_server: 'ntp.example.org', max_conns: 100, quoted: '01' },
    });
  });

  it('converts unquoted true/false and integers only', () => {
    expect(iniValue('true', false)).toBe(true);
    expect(iniValue('False', false)).toBe(false);
    expect(iniValue('42', false)).toBe(42);
    expect(iniValue('-7', false)).toBe(-7);
    expect(iniValue('007', false)).toBe('007');
    expect(iniValue('1.5', false)).toBe('1.5');
    expect(iniValue('yes', false)).toBe('yes');
    expect(iniValue('true', true)).toBe('true');
    expect(iniValue('42', true)).toBe('42');
  });

  it('extracts the jump host from ssh arguments', () => {
    expect(proxyJumpOf('-o ProxyJump=ops@bastion:2222 -o StrictHostKeyChecking=no')).toEqual(['ops@bastion:2222']);
    expect(proxyJumpOf('-J a,b')).toEqual(['a', 'b']);
    expect(proxyJumpOf('-Jgw')).toEqual(['gw']);
    expect(proxyJumpOf('-o "ProxyJump gw"')).toEqual(['gw']);
    expect(proxyJumpOf('-o ForwardAgent=yes')).toEqual([]);
  });

  it('expands ranges with padding, letters and steps', () => {
    const names = (line: string) => readIniInventory(`[g]\n${line}\n`, 'h', '/h').hosts.map((h) => h.name);
    expect(names('web[01:03]')).toEqual(['web01', 'web02', 'web03']);
    expect(names('db-[a:c].lan')).toEqual(['db-a.lan', 'db-b.lan', 'db-c.lan']);
    expect(names('n[0:10:5]')).toEqual(['n0', 'n5', 'n10']);
  });

  describe('errors carry file:line:column', () => {
    const errorOf = (text: string): string => {
      try {
        readIniInventory(text, 'hosts', '/p/hosts');
      } catch (e) {
        if (e instanceof ConfigError) return e.message;
        throw e;
      }
      throw new Error('expected an error');
    };
    it.each([
      ['[web\nweb1\n', 'hosts:1:1: malformed section header "[web" (expected [group], [group:children] or [group:vars])'],
      ['[web:hosts]\n', 'hosts:1:5: unknown section type ":hosts" (expected [web:children] or [web:vars])'],
      ['[web]\nweb1 ansible_host=1.2.3.4 oops\n', 'hosts:2:27: expected key=value after host "web1", got "oops"'],
      ['[web]\n  web1 motd="unclosed\n', 'hosts:2:13: unterminated " quote'],
      ['[web]\nweb1 ansible_port=twenty-two\n', 'hosts:2:19: "ansible_port" must be an integer between 1 and 65535, got "twenty-two"'],
      ['[web]\nweb1 ansible_become=maybe\n', 'hosts:2:21: "ansible_become" must be true or false, got "maybe"'],
      ['[web:vars]\njust a line\n', 'hosts:2:1: expected key=value in [web:vars], got "just a line"'],
      ['[web:children]\nweb eu\n', 'hosts:2:1: expected a group name in [web:children], got "web eu"'],
      ['[web]\nweb[3:1]\n', 'hosts:2:1: invalid host range "[3:1]" in "web[3:1]"'],
    ])('%j', (text, message) => {
      expect(errorOf(text)).toBe(message);
    });
  });

  it('loads inventories/<env>.ini and reports a group cycle at its line', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keel-ini-'));
    try {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(path.join(dir, 'inventories'));
      await writeFile(path.join(dir, 'inventories/qa.ini'), '[a:children]\nb\n\n[b:children]\na\n');
      await expect(loadInventory({ root: dir, env: 'qa' })).rejects.toThrow(
        'inventories/qa.ini:5:1: group cycle: a -> b -> a (a group cannot contain itself through children)',
      );
      await writeFile(path.join(dir, 'inventories/qa.ini'), 'solo\n');
      const inv = await loadInventory({ root: dir, env: 'qa' });
      expect(inv.hosts[0]).toMatchObject({ name: 'solo', groups: ['all', 'ungrouped'] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
