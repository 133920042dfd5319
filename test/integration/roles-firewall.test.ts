// Built-in role `firewall` on a real target: nftables in a systemd Debian container (NET_ADMIN),
// applied over real SSH. Reachability is tested for real from this machine to the container's
// address on the Docker bridge (never leaving the machine): listeners (netcat, from Debian's
// mirror) run inside the container; the test connects to them from outside, so packets go
// through the container's input hook (a connection from inside would use `lo`, always open).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { tempProject, writeInventory } from '../helpers/project.js';
import { probe, sh, startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';

let target: TestTarget;
let ip: string;
let gateway: string;
const dirs: string[] = [];

function project(t: TestTarget, vars: string, login = 'user: root'): string {
  const dir = tempProject('role-fw');
  dirs.push(dir);
  writeInventory(dir, t, { host: 'search1', group: 'search', roles: ['firewall'], vars, login });
  return dir;
}

beforeAll(async () => {
  target = await startTarget({ users: true });
  await sh(target, 'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q netcat-openbsd >/dev/null');
  // Listeners in their own units, outside the test's exec sessions.
  await sh(target, 'systemd-run --unit=listen9200 nc -lk 9200 && systemd-run --unit=listen8080 nc -lk 8080');
  ip = (await sh(target, "ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1")).trim();
  gateway = (await sh(target, "ip route show default | awk '{print $3}'")).trim();
  expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
});
afterAll(async () => {
  await target?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('role firewall', () => {
  it('opens SSH (also the session port), 80/443 and per-source rules, drops the rest, keeps the SSH session, converges', async () => {
    // Before: everything reachable, so a later timeout is the firewall, not a missing listener.
    expect(await probe(ip, 9200)).toBe('open');
    expect(await probe(ip, 8080)).toBe('open');

    // firewall_ssh_port is NOT the port keel connects to (22 in the container): only the
    // session-port detection keeps 22 open for the next run.
    const root = project(
      target,
      `  firewall_ssh_port: 2200
  firewall_rules:
    - {port: 9200, to_port: 9400, proto: tcp, from: 10.0.0.0/8, comment: "elasticsearch: private network only"}
    - {port: 8080, from: [${gateway}/32, 192.168.0.0/16]}`,
    );
    let t0 = Date.now();
    const first = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const firstMs = Date.now() - t0;
    const a = first.json();
    expect(a.failed, first.stdout).toBe(0);
    expect(first.code).toBe(0);
    expect(a.changed).toBeGreaterThan(3);

    // A new SSH connection works (the applying session was not locked out) and changes nothing.
    t0 = Date.now();
    const second = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const secondMs = Date.now() - t0;
    const b = second.json();
    expect(second.code).toBe(0);
    expect(b.changed, second.stdout).toBe(0);
    console.log(`firewall: first run ${firstMs} ms (${a.changed} changed), second run ${secondMs} ms (0 changed)`);

    const rules = await sh(target, 'nft list table inet keel');
    expect(rules).toContain('policy drop;');
    expect(rules).toContain('tcp dport @ssh_ports accept');
    expect(rules).toContain('tcp dport { 80, 443 } accept');
    expect(rules).toContain('ip saddr 10.0.0.0/8 tcp dport 9200-9400 accept');
    expect(rules).toMatch(/ssh_ports \{[\s\S]*elements = \{ (22, 2200|2200, 22) \}/);
    expect((await sh(target, 'systemctl is-enabled nftables')).trim()).toBe('enabled');

    // From this machine (source: the bridge gateway): 9200 dropped, 8080 open to us, 22 open.
    expect(await probe(ip, 9200)).toBe('timeout');
    expect(await probe(ip, 9300)).toBe('timeout');
    expect(await probe(ip, 8080)).toBe('open');
    expect(await probe(ip, 22)).toBe('open');
    // 80 is open in the firewall; with no listener the kernel answers RST (not a drop).
    expect(await probe(ip, 80)).toBe('refused');

    // After a reboot the rules come from the files: restart the unit, SSH still works.
    await sh(target, 'systemctl restart nftables');
    expect(await probe(ip, 9200)).toBe('timeout');
    const third = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(third.code).toBe(0);
    expect(third.json().changed).toBe(0);
  });

  it('rules nft refuses are not installed: the old file and the running rules stay (exit 2)', async () => {
    const before = await sh(target, 'cat /etc/nftables.conf');
    const root = project(
      target,
      `  firewall_rules:
    - {port: 9400, to_port: 9200}`,
    );
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(r.code).toBe(2);
    const failed = r.json().hosts[0].resources.find((x: any) => x.status === 'failed');
    expect(failed.id).toContain('/etc/nftables.conf');
    expect(failed.output).toMatch(/nft|range|Error/i);
    expect(await sh(target, 'cat /etc/nftables.conf')).toBe(before);
    expect(await probe(ip, 9200)).toBe('timeout');
    expect(await probe(ip, 22)).toBe('open');
  });

  it('through sudo (which clears $SSH_CONNECTION) the session port is still found: nothing changes, 22 stays open', async () => {
    const root = project(
      target,
      `  firewall_ssh_port: 2200
  firewall_rules:
    - {port: 9200, to_port: 9400, proto: tcp, from: 10.0.0.0/8, comment: "elasticsearch: private network only"}
    - {port: 8080, from: [${gateway}/32, 192.168.0.0/16]}`,
      'user: deploy, become: true',
    );
    const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(r.code, r.stdout).toBe(0);
    // Had the port fallen back to firewall_ssh_port (2200), the session file would change.
    expect(r.json().changed, r.stdout).toBe(0);
    expect(await sh(target, 'cat /etc/nftables.d/keel-ssh-session.nft')).toContain('add element inet keel ssh_ports { 22 }');
    expect(await probe(ip, 22)).toBe('open');
  });
});
