// Dynamic inventories (`ansible_inventory_script:`, inventory/ansible-script.ts): a script in
// Ansible's --list protocol, as cloud inventory scripts print it, read with the group_vars/
// beside it and keel's own file on top; and what a script that goes wrong is told.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/inventory/load.js';

let root = '';
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keel-inv-script-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function write(rel: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), text);
  chmodSync(join(root, rel), mode);
}

/** inventory/asg.sh: prints `json` for --list, logs every call to calls.log. */
function script(json: unknown, more = ''): void {
  write(
    'inventory/asg.sh',
    `#!/bin/sh\necho "$*" >> "$(dirname "$0")/calls.log"\n${more}\ncase "$1" in --list) cat <<'EOF'\n${JSON.stringify(json)}\nEOF\n;; esac\n`,
    0o755,
  );
}

const KEEL = `ansible_inventory_script: ../inventory/asg.sh
vars:
  app_user: aquamark
groups:
  web: {roles: [base]}
  lb: {roles: [base]}
`;

const load = () => loadInventory({ root, env: 'production', knownRoles: ['base'], isKnownRole: (n) => n === 'base' });

describe('ansible_inventory_script: an executable in the --list protocol', () => {
  it("takes the script's hosts, groups, hostvars and connection variables, the group_vars beside it, keel's values on top", async () => {
    script({
      web: { hosts: ['i-0a1', 'i-0b2'], vars: { web_tier: 'asg', app_user: 'from-script' } },
      lb: ['lb1'],
      all: { vars: { region: 'ap-southeast-2' } },
      _meta: {
        hostvars: {
          'i-0a1': { ansible_host: '127.0.0.1', ansible_port: 2201, ansible_user: 'admin', private_address: '10.0.1.5' },
          'i-0b2': { ansible_host: '127.0.0.1', ansible_port: 2202, ansible_user: 'admin', private_address: '10.0.1.6' },
          lb1: { ansible_host: '127.0.0.1', ansible_port: 2200 },
        },
      },
    });
    write('inventory/group_vars/web.yml', 'web_tier: from-group-vars\nworkers: 3\n');
    write('inventories/production.yaml', KEEL);
    const inv = await load();
    expect(inv.hosts.map((h) => [h.name, h.groups.filter((g) => g !== 'all'), h.roles])).toEqual([
      ['i-0a1', ['web'], ['base']],
      ['i-0b2', ['web'], ['base']],
      ['lb1', ['lb'], ['base']],
    ]);
    const a = inv.hosts[0]!;
    expect([a.connection.address, a.connection.port, a.connection.user]).toEqual(['127.0.0.1', 2201, 'admin']);
    // group_vars/web.yml beside the script beats the script's group vars (Ansible's order);
    // keel's file beats both.
    expect(a.vars).toMatchObject({ web_tier: 'from-group-vars', workers: 3, region: 'ap-southeast-2', private_address: '10.0.1.5', app_user: 'aquamark' });
    expect(readFileSync(join(root, 'inventory/calls.log'), 'utf8')).toBe('--list\n');
  });

  it('without _meta, asks --host NAME for each host, as Ansible does', async () => {
    script({ web: ['web1', 'web2'] }, `[ "$1" = --host ] && { printf '{"ansible_port": %s}' "$([ "$2" = web1 ] && echo 2201 || echo 2202)"; exit 0; }`);
    write('inventories/production.yaml', KEEL);
    const inv = await load();
    expect(inv.hosts.map((h) => h.connection.port)).toEqual([2201, 2202]);
    expect(readFileSync(join(root, 'inventory/calls.log'), 'utf8')).toBe('--list\n--host web1\n--host web2\n');
  });

  it('a script that is not executable, fails, or prints no JSON stops the run with what to fix', async () => {
    write('inventories/production.yaml', KEEL);
    write('inventory/asg.sh', '#!/bin/sh\necho {}\n', 0o644);
    await expect(load()).rejects.toThrow(/inventories\/production\.yaml:1:\d+: ansible_inventory_script: \.\.\/inventory\/asg\.sh is not executable/);
    await load().catch((e) => expect(e.hint).toBe('chmod +x ../inventory/asg.sh (it runs as ../inventory/asg.sh --list)'));

    write('inventory/asg.sh', '#!/bin/sh\necho "botocore.exceptions.NoCredentialsError: Unable to locate credentials" >&2\nexit 3\n', 0o755);
    await expect(load()).rejects.toThrow(
      /\.\.\/inventory\/asg\.sh --list failed \(exit 3\):\n {2}\| botocore\.exceptions\.NoCredentialsError: Unable to locate credentials/,
    );

    write('inventory/asg.sh', '#!/bin/sh\necho "Traceback (most recent call last):"\n', 0o755);
    await expect(load()).rejects.toThrow(/\.\.\/inventory\/asg\.sh --list did not print JSON \(.*\); it printed: Traceback \(most recent call last\):/);

    script({ web: 'web1' });
    await expect(load()).rejects.toThrow(/group "web" must be a list of hosts or an object, got string "web1"/);

    write('inventories/production.yaml', KEEL.replace('asg.sh', 'gone.sh'));
    await expect(load()).rejects.toThrow(/ansible_inventory_script: \.\.\/inventory\/gone\.sh not found/);
  });

  it('names one Ansible inventory: not ansible_inventory and a script together', async () => {
    script({ web: ['web1'] });
    write('inventories/production.yaml', `ansible_inventory: hosts\n${KEEL}`);
    await expect(load()).rejects.toThrow(/"ansible_inventory" and "ansible_inventory_script" together/);
  });
});
