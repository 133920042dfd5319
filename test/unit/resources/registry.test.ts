import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { resourceTypes } from '../../../src/resources/registry.js';

describe('registry', () => {
  it('has every type under its role.yaml key', () => {
    expect([...resourceTypes.keys()].sort()).toEqual([
      'apt_repository',
      'command',
      'directory',
      'file',
      'git',
      'group',
      'line',
      'package',
      'service',
      'symlink',
      'user',
    ]);
  });
  it('every schema compiles with ajv and rejects unknown params', () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    for (const t of resourceTypes.values()) {
      const validate = ajv.compile(t.schema as object);
      expect(validate({ nonsense: 1 }), t.name).toBe(false);
    }
  });
  it('examples a role author writes validate', () => {
    const ajv = new Ajv({ strict: false });
    const ok = (type: string, params: unknown) => {
      const v = ajv.compile(resourceTypes.get(type)!.schema as object);
      expect(v(params), `${type}: ${JSON.stringify(v.errors)}`).toBe(true);
    };
    ok('directory', { path: '/srv/app', owner: 'deploy', mode: 755 });
    ok('symlink', { path: '/etc/nginx/sites-enabled/app', target: '../sites-available/app' });
    ok('line', { path: '/etc/ssh/sshd_config', regexp: '^#?PasswordAuthentication', line: 'PasswordAuthentication no' });
    ok('user', { name: 'deploy', groups: ['sudo', 'www-data'], shell: '/bin/bash', group: 1001 });
    ok('group', { name: 'deploy', gid: 1001, system: false });
    ok('service', { name: 'getty@tty1.service', state: 'started', enabled: true });
    ok('command', { run: 'make install', creates: '/usr/local/bin/x', env: { A: 'b' }, user: 'deploy' });
    ok('git', { repo: 'https://github.com/x/y.git', dest: '/srv/y', version: 'v1.2.3', depth: 1 });
    ok('apt_repository', {
      name: 'nodesource',
      uri: 'https://deb.nodesource.com/node_20.x',
      suite: 'nodistro',
      components: ['main'],
      key_url: 'https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key',
    });
  });
});
