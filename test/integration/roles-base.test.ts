// Built-in role `base` on a real target (systemd Debian container, real sshd): applied twice
// through the real CLI, then the layout, the user, the timezone and the locale are checked
// inside the container. Also: bad variables are refused before anything runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { tempProject, writeInventory } from '../helpers/project.js';
import { startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';

let target: TestTarget;
const dirs: string[] = [];

function project(t: TestTarget, roles: string[], vars: string): string {
  const dir = tempProject('role-base');
  dirs.push(dir);
  writeInventory(dir, t, { group: 'web', roles, vars });
  return dir;
}

beforeAll(async () => {
  target = await startTarget();
});
afterAll(async () => {
  await target?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('role base', () => {
  it('applies, converges (0 changed on the second run), and lays out the app user and directories', async () => {
    const root = project(
      target,
      ['base'],
      `  app_user: devartis
  base_timezone: America/Argentina/Buenos_Aires
  base_locale: es_AR.UTF-8
  base_packages_extra: [tree]
  base_unattended_upgrades: true`,
    );
    let t0 = Date.now();
    const first = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const firstMs = Date.now() - t0;
    expect(first.stderr).toBe('');
    const a = first.json();
    expect(
      a.failed,
      JSON.stringify(
        a.hosts[0].resources.filter((r: any) => r.status === 'failed'),
        null,
        1,
      ),
    ).toBe(0);
    expect(first.code).toBe(0);
    expect(a.changed).toBeGreaterThan(10);

    t0 = Date.now();
    const second = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const secondMs = Date.now() - t0;
    const b = second.json();
    expect(second.code).toBe(0);
    expect(
      b.changed,
      JSON.stringify(
        b.hosts[0].resources.filter((r: any) => r.status !== 'ok' && r.status !== 'skipped'),
        null,
        1,
      ),
    ).toBe(0);
    expect(b.hosts[0].roundTrips).toBe(1);
    console.log(`base: first run ${firstMs} ms (${a.changed} changed), second run ${secondMs} ms (0 changed)`);

    const r = await target.exec([
      'sh',
      '-c',
      `
      cd /home/devartis
      stat -c '%n %U %G %a' /home/devartis webapp webapp/releases webapp/sockets webapp/logs webapp/config webapp/bin webapp/media webapp/static
      id devartis
      getent passwd devartis | cut -d: -f6,7
      readlink /etc/localtime; cat /etc/timezone; date +%Z
      cat /etc/default/locale; locale -a | grep -x es_AR.utf8
      for p in git acl curl vim htop ca-certificates tree unattended-upgrades; do dpkg-query -W -f '\${Package} \${db:Status-Abbrev}\\n' $p; done
      grep -c 'Unattended-Upgrade "1"' /etc/apt/apt.conf.d/20auto-upgrades`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 10)).toEqual(
      [
        '/home/devartis devartis devartis 711',
        'webapp devartis devartis 711',
        'webapp/releases devartis devartis 750',
        'webapp/sockets devartis www-data 2750',
        'webapp/logs devartis devartis 750',
        'webapp/config devartis devartis 750',
        'webapp/bin devartis devartis 750',
        'webapp/media devartis www-data 2750',
        'webapp/static devartis www-data 2750',
      ].concat(lines.slice(9, 10)),
    );
    expect(lines[9]).toMatch(/^uid=\d+\(devartis\) gid=\d+\(devartis\) groups=\d+\(devartis\)$/);
    expect(lines[10]).toBe('/home/devartis:/bin/bash');
    expect(lines.slice(11, 14)).toEqual(['/usr/share/zoneinfo/America/Argentina/Buenos_Aires', 'America/Argentina/Buenos_Aires', '-03']);
    expect(lines.slice(14, 16)).toEqual(['LANG=es_AR.UTF-8', 'es_AR.utf8']);
    for (const l of lines.slice(16, 24)) expect(l).toMatch(/ ii $/);
    expect(lines[24]).toBe('1');

    // The web server's user can reach a socket and static files, but not the code or config.
    const www = await target.exec([
      'sh',
      '-c',
      `
      runuser -u devartis -- sh -c 'touch /home/devartis/webapp/static/site.css /home/devartis/webapp/config/.env'
      stat -c '%G' /home/devartis/webapp/static/site.css
      runuser -u www-data -- cat /home/devartis/webapp/static/site.css && echo static-readable
      runuser -u www-data -- ls /home/devartis/webapp/config >/dev/null 2>&1 || echo config-closed
      runuser -u www-data -- ls /home/devartis/webapp/releases >/dev/null 2>&1 || echo app-closed`,
    ]);
    expect(www.stdout.trim().split('\n')).toEqual(['www-data', 'static-readable', 'config-closed', 'app-closed']);
  });

  it('refuses bad variables before connecting, naming the file and line (exit 1)', async () => {
    const root = project(
      target,
      ['base', 'firewall', 'postgres'],
      `  base_timezone: Europe/Paris
  postgres_listen_adresses: "*"
  firewall_ssh_port: 70000
  base_packages_extra: tree
  postgres_password: not-from-a-vault-here`,
    );
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(r.code).toBe(1);
    const err = r.stderr;
    expect(err).toMatch(
      /inventories\/itest\.yaml:4:\d+: .*unknown variable "postgres_listen_adresses" for role postgres \(did you mean "postgres_listen_addresses"\?\)/,
    );
    expect(err).toMatch(/inventories\/itest\.yaml:5:\d+: .*variable "firewall_ssh_port" \(role firewall\) must be <= 65535, got 70000/);
    expect(err).toMatch(/inventories\/itest\.yaml:6:\d+: .*variable "base_packages_extra" \(role base\) must be array, got "tree"/);
    // Nothing ran: the timezone is still the image's.
    expect((await target.exec(['cat', '/etc/timezone'])).stdout.trim()).not.toBe('Europe/Paris');
  });
});
