import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hostMatches, lookupSshHost, parseSshConfig } from '../../src/inventory/ssh-config.js';

const fixtures = fileURLToPath(new URL('../fixtures/inventory/', import.meta.url));
const home = os.homedir();
const load = async (name: string) => parseSshConfig(await readFile(path.join(fixtures, name), 'utf8'), name);

describe('OpenSSH config', () => {
  it('resolves a vagrant ssh-config alias', async () => {
    const config = await load('project/inventories/vagrant.ssh-config');
    expect(lookupSshHost(config, 'default')).toMatchObject({
      matched: true,
      hostName: '127.0.0.1',
      port: 2222,
      user: 'vagrant',
      identityFiles: ['/home/alice/projects/catalogage/.vagrant/machines/default/virtualbox/private_key'],
      locations: { hostname: { file: 'project/inventories/vagrant.ssh-config', line: 2, column: 3 } },
    });
    expect(lookupSshHost(config, 'other').matched).toBe(false);
  });

  it('keeps the first value, accumulates IdentityFile, ignores Match blocks and Include', async () => {
    const config = await load('ssh_config');
    expect(lookupSshHost(config, 'prod-web')).toEqual({
      matched: true,
      hostName: '10.1.2.3',
      user: 'produser', // not "fallback" from Host *
      port: 2201,
      identityFiles: [path.join(home, '.ssh/prod_key'), path.join(home, '.ssh/id_default')],
      proxyJump: ['admin@bastion.example.net:22'],
      locations: expect.any(Object),
    });
    expect(lookupSshHost(config, 'prod-web-2').hostName).toBe('10.1.2.3'); // `?` pattern
    expect(lookupSshHost(config, 'prod-web-12').hostName).toBeUndefined();
    // `=` syntax, %h in HostName, quoted value with a space, %d; not the Match block's user.
    expect(lookupSshHost(config, 'alias1')).toMatchObject({
      hostName: 'alias1.internal.example.net',
      user: 'fallback',
      identityFiles: [path.join(home, '.ssh/key with space'), path.join(home, '.ssh/id_default')],
    });
    // Case-insensitive keywords, negated patterns.
    expect(lookupSshHost(config, 'api.example.net')).toMatchObject({ user: 'internal', port: 2022 });
    expect(lookupSshHost(config, 'secret.example.net')).toMatchObject({ user: 'fallback', port: 22 });
  });

  it('matches patterns like OpenSSH', () => {
    expect(hostMatches(['*.lan'], 'db.lan')).toBe(true);
    expect(hostMatches(['*.lan'], 'db.lan.example')).toBe(false);
    expect(hostMatches(['web?'], 'web1')).toBe(true);
    expect(hostMatches(['web?'], 'web10')).toBe(false);
    expect(hostMatches(['*', '!bastion'], 'bastion')).toBe(false);
    expect(hostMatches(['!bastion'], 'web1')).toBe(false); // a negation alone matches nothing
    expect(hostMatches(['a.b+c'], 'a.b+c')).toBe(true);
    expect(hostMatches(['a.b'], 'axb')).toBe(false);
  });

  it('reads ProxyJump none as no jump host', () => {
    const config = parseSshConfig('Host x\n  ProxyJump none\nHost *\n  ProxyJump gw\n', 'c');
    expect(lookupSshHost(config, 'x').proxyJump).toEqual([]);
    expect(lookupSshHost(config, 'y').proxyJump).toEqual(['gw']);
  });

  it('reports malformed lines and bad ports with their location', () => {
    expect(() => parseSshConfig('Host a\n  Port\n', 'cfg')).toThrow('cfg:2:3: expected "Keyword value", got "Port"');
    expect(() => lookupSshHost(parseSshConfig('Host a\n\tPort 70000\n', 'cfg'), 'a')).toThrow(
      'cfg:2:2: "Port" must be an integer between 1 and 65535, got "70000"',
    );
  });
});
