// The local test targets themselves: systemd runs, sshd answers with the host key we
// recorded, the test users behave, and `keel target up/status/down` manage a project's targets:
// named, on SSH/HTTP/HTTPS ports that stay, named by `target:` in a user's inventory; and a
// Vagrant machine (examples/vagrant) provisioned through `vagrant ssh-config`.
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { docker } from '../../src/target/docker-cli.js';
import { keelPackageRoot, targetDown, targetStatus, targetUp, type TargetHost } from '../../src/target/docker.js';
import { ensureClientKey } from '../../src/target/keys.js';
import { runKeel } from '../helpers/cli.js';
import { DEPLOYP_PASSWORD, startTarget, type TestTarget } from '../helpers/target.js';

function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Connect with ssh2, accepting only the host key listed for [host]:port in knownHostsFile. */
async function sshRun(opts: { port: number; user: string; keyFile: string; knownHostsFile: string; command: string; stdin?: string }): Promise<Run> {
  const known = (await readFile(opts.knownHostsFile, 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith(`[127.0.0.1]:${opts.port} `))
    .map((l) => l.split(' ')[2]);
  expect(known).toHaveLength(1);
  const privateKey = await readFile(opts.keyFile);
  return new Promise((resolve, reject) => {
    const conn = new Client();
    conn
      .on('ready', () => {
        conn.exec(opts.command, (err, ch) => {
          if (err) return reject(err);
          let stdout = '';
          let stderr = '';
          ch.on('data', (d: Buffer) => (stdout += d.toString()));
          ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          ch.on('close', (code: number | null) => {
            conn.end();
            resolve({ code, stdout, stderr });
          });
          ch.end(opts.stdin ?? '');
        });
      })
      .on('error', reject)
      .connect({
        host: '127.0.0.1',
        port: opts.port,
        username: opts.user,
        privateKey,
        hostVerifier: (key: Buffer) => key.toString('base64') === known[0],
        readyTimeout: 10_000,
      });
  });
}

describe('test target (testcontainers helper)', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startTarget({ users: true });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('runs systemd to completion', async () => {
    const r = await t.exec(['systemctl', 'is-system-running']);
    expect(r.stdout.trim()).toMatch(/^(running|degraded)$/);
  });

  it('publishes sshd on loopback only, under its own hostname', async () => {
    const ports = (await docker(['port', t.container.getId(), '22/tcp'])).trim().split('\n');
    expect(ports).toEqual([`127.0.0.1:${t.port}`]);
    expect((await t.exec(['hostname'])).stdout.trim()).toBe(t.name);
  });

  it('answers SSH as root with the host key recorded in known_hosts', async () => {
    const r = await sshRun({ ...t, user: 'root', command: 'id -un' });
    expect(r).toMatchObject({ code: 0, stdout: 'root\n' });
  });

  it('refuses a host key other than the recorded one', async () => {
    const known = (await readFile(t.knownHostsFile, 'utf8')).trim().split(' ')[2]!;
    const privateKey = await readFile(t.keyFile);
    const err = await new Promise<Error>((resolve) => {
      const conn = new Client();
      conn
        .on('ready', () => {
          conn.end();
          resolve(new Error('connected although the host key did not match'));
        })
        .on('error', resolve)
        .connect({
          host: '127.0.0.1',
          port: t.port,
          username: 'root',
          privateKey,
          hostVerifier: (key: Buffer) => key.toString('base64') === known.slice(0, -4) + 'AAAA',
        });
    });
    expect(err.message).toMatch(/verification failed/i);
  });

  it('has user deploy with passwordless sudo', async () => {
    const r = await sshRun({ ...t, user: 'deploy', command: 'sudo -n true && sudo -n id -un' });
    expect(r).toMatchObject({ code: 0, stdout: 'root\n' });
  });

  it('has user deployp whose sudo needs the password', async () => {
    const without = await sshRun({ ...t, user: 'deployp', command: 'sudo -n true' });
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/password is required/);
    const withPw = await sshRun({
      ...t,
      user: 'deployp',
      command: "sudo -S -p '' id -un",
      stdin: `${DEPLOYP_PASSWORD}\n`,
    });
    expect(withPw).toMatchObject({ code: 0, stdout: 'root\n' });
  });
});

describe('keel target up / status / down', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'keel-target-root-'));
  });
  afterAll(async () => {
    if (root) {
      await targetDown({ root }).catch(() => {});
      await rm(root, { recursive: true, force: true });
    }
  });

  it('makes one client key even when callers race, and keeps it', async () => {
    const file = join(root, 'race', 'id_ed25519');
    const keys = await Promise.all(Array.from({ length: 4 }, () => ensureClientKey(file)));
    expect(new Set(keys.map((k) => k.publicKey)).size).toBe(1);
    expect((await readFile(`${file}.pub`, 'utf8')).trim()).toBe(keys[0]!.publicKey);
    expect((await ensureClientKey(file)).publicKey).toBe(keys[0]!.publicKey);
  });

  it('starts two targets, writes inventory and known_hosts, reuses them, removes them', async () => {
    const up = await targetUp({ root, hosts: 2 });
    expect(up.hosts.map((h) => h.name)).toEqual(['target1', 'target2']);
    expect(new Set(up.hosts.map((h) => h.port)).size).toBe(2);
    expect((await stat(up.keyFile)).mode & 0o777).toBe(0o600);

    const inv = parse(await readFile(up.inventoryFile, 'utf8')) as {
      known_hosts: string;
      hosts: Record<string, { address: string; port: number; user: string; key: string; groups: string[] }>;
      groups: Record<string, { roles: string[] }>;
    };
    expect(inv.known_hosts).toBe('../.keel/target/known_hosts');
    expect(inv.groups).toEqual({ web: { roles: ['demo'] } });
    for (const h of up.hosts) {
      expect(inv.hosts[h.name]).toEqual({
        address: '127.0.0.1',
        port: h.port,
        user: 'root',
        key: '../.keel/target/id_ed25519',
        groups: ['web'],
      });
      const r = await sshRun({ port: h.port, user: 'root', keyFile: up.keyFile, knownHostsFile: up.knownHostsFile, command: 'hostname' });
      expect(r).toMatchObject({ code: 0, stdout: `${h.name}\n` });
    }

    for (const h of up.hosts) {
      expect((await docker(['port', h.container, '22/tcp'])).trim()).toBe(`127.0.0.1:${h.port}`);
    }
    // Targets reach each other by name on the project's network (a private network).
    const peer = await sshRun({
      port: up.hosts[0]!.port,
      user: 'root',
      keyFile: up.keyFile,
      knownHostsFile: up.knownHostsFile,
      command: 'getent hosts target2 && timeout 5 sh -c "echo > /dev/tcp/target2/22" 2>/dev/null; echo done',
    });
    expect(peer.stdout).toMatch(/^\d+\.\d+\.\d+\.\d+\s+target2\b/);
    const status = await targetStatus({ root });
    expect(status.hosts.map((h) => [h.name, h.port, h.state])).toEqual(up.hosts.map((h) => [h.name, h.port, 'running']));

    // Idempotent: the same containers and ports again, nothing extra.
    const again = await targetUp({ root, hosts: 2 });
    expect(again.hosts).toEqual(up.hosts);
    expect(await readFile(again.knownHostsFile, 'utf8')).toBe(await readFile(up.knownHostsFile, 'utf8'));

    // Fewer hosts asked: the extra target is left alone, the inventory lists the one asked for.
    const one = await targetUp({ root, hosts: 1 });
    expect(one.hosts.map((h) => h.name)).toEqual(['target1']);
    expect((await targetStatus({ root })).hosts).toHaveLength(2);

    const down = await targetDown({ root });
    expect(down.removed.sort()).toEqual(up.hosts.map((h) => h.container).sort());
    // Gone, but remembered: the next `up` brings them back on the same ports.
    const after = await targetStatus({ root });
    expect(after.hosts.map((h) => [h.name, h.port, h.state])).toEqual(up.hosts.map((h) => [h.name, h.port, 'down']));
    await targetDown({ root, forget: true });
    expect((await targetStatus({ root })).hosts).toEqual([]);
  });
});

/** GET a URL on 127.0.0.1 until the body contains `text` (nginx reloads after keel returns). */
async function fetchUntil(url: string, text: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      last = `${res.status} ${await res.text()}`;
      if (last.includes(text)) return last;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${url} never answered with ${JSON.stringify(text)}; last: ${last.slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** `docker port` of a container: "22/tcp -> 127.0.0.1:24022" lines, sorted. */
async function publishedPorts(container: string): Promise<string[]> {
  return (await docker(['port', container])).trim().split('\n').sort();
}

async function containerId(container: string): Promise<string> {
  return (await docker(['inspect', '--format', '{{.Id}}', container])).trim();
}

describe('named targets on ports that stay (keel target up web1; target: web1 in an inventory)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'keel-target-named-'));
    await mkdir(join(root, 'inventories'));
    await writeFile(
      join(root, 'inventories', 'dev.yaml'),
      [
        '# A user inventory: the host names the target, not its port.',
        'connection: {become: true}',
        'hosts:',
        '  web1:',
        '    target: web1',
        '    groups: [web]',
        'groups:',
        '  web: {roles: [demo]}',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    if (root) {
      await targetDown({ root }).catch(() => {});
      await rm(root, { recursive: true, force: true });
    }
  });

  let first: TargetHost;

  it('starts web1 with SSH, HTTP and HTTPS on recorded ports of 127.0.0.1', async () => {
    const up = await targetUp({ root, names: ['web1'] });
    expect(up.notices).toEqual([]);
    first = up.hosts[0]!;
    expect(first.name).toBe('web1');
    const { ssh, http, https } = first.ports;
    expect(new Set([ssh, http, https]).size).toBe(3);
    expect(await publishedPorts(first.container)).toEqual(
      [`22/tcp -> 127.0.0.1:${ssh}`, `443/tcp -> 127.0.0.1:${https}`, `80/tcp -> 127.0.0.1:${http}`].sort(),
    );
    expect(first.urls).toEqual({ http: `http://127.0.0.1:${http}/`, https: `https://127.0.0.1:${https}/` });
    const registry = JSON.parse(await readFile(up.registryFile, 'utf8'));
    expect(registry).toMatchObject({ version: 1, targets: { web1: { ports: first.ports, hostKey: expect.stringMatching(/^ssh-ed25519 /) } } });
    const r = await sshRun({ port: ssh, user: 'root', keyFile: up.keyFile, knownHostsFile: up.knownHostsFile, command: 'hostname' });
    expect(r).toMatchObject({ code: 0, stdout: 'web1\n' });
  });

  it('provisions the demo role through the user inventory, and the page answers on the HTTP port', async () => {
    const started = Date.now();
    const r = await runKeel(['provision', 'dev', '--yes', '--output', 'json'], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ failed: 0, unreachable: 0 });
    console.log(`provision through target: web1: ${r.json().changed} changed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await fetchUntil(first.urls.http, 'Provisioned by keel on web1 (dev)');
  });

  it('keeps the ports across a docker restart', async () => {
    const id = await containerId(first.container);
    await docker(['restart', '--time', '1', first.container]);
    const up = await targetUp({ root, names: ['web1'] });
    expect(up.hosts[0]!.ports).toEqual(first.ports);
    expect(await containerId(first.container)).toBe(id); // the same container, not a new one
    await fetchUntil(first.urls.http, 'Provisioned by keel on web1 (dev)'); // nginx is enabled: back after the restart
  });

  it('starts a stopped target again on its ports (docker start)', async () => {
    await docker(['stop', '--time', '1', first.container]);
    const status = await runKeel(['target', 'status'], { root });
    expect(status.stdout).toMatch(
      new RegExp(`^web1\\s+exited\\s+bookworm\\s+ssh root@127\\.0\\.0\\.1 -p ${first.ports.ssh}\\s+http://127\\.0\\.0\\.1:${first.ports.http}/`, 'm'),
    );
    // What a run says while it is down: the command that brings it back.
    const down = await runKeel(['provision', 'dev', '--yes'], { root });
    expect(down.code).toBe(2);
    expect(down.stdout + down.stderr).toContain('web1 is a local target, and it is not running: `keel target up web1` starts it again on the same ports');
    const up = await runKeel(['target', 'up', 'web1'], { root });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(first.urls.http);
    await fetchUntil(first.urls.http, 'Provisioned by keel on web1 (dev)');
  });

  it('re-creates a removed target on the same ports, with its new host key in known_hosts', async () => {
    const down = await runKeel(['target', 'down', 'web1'], { root });
    expect(down).toMatchObject({ code: 0, stdout: `removed ${first.container}\n` });
    const up = await targetUp({ root, names: ['web1'] });
    expect(up.hosts[0]!.ports).toEqual(first.ports);
    expect(await publishedPorts(first.container)).toHaveLength(3);
    // A new container has a new host key; known_hosts follows, so the inventory keeps working
    // (a check run connects and probes the fresh container: everything would change).
    const again = await runKeel(['provision', 'dev', '--check', '--output', 'json'], { root });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ unreachable: 0, failed: 0 });
    expect(again.json().changed).toBeGreaterThan(0);
  });

  it('moves a recorded port that another program took, and says which', async () => {
    await targetDown({ root, names: ['web1'] });
    const squatter = createServer((s) => s.destroy());
    await new Promise<void>((r) => squatter.listen(first.ports.http, '127.0.0.1', r));
    try {
      const notices: string[] = [];
      const up = await targetUp({ root, names: ['web1'], onNotice: (m) => notices.push(m) });
      const moved = up.hosts[0]!.ports;
      expect(moved.ssh).toBe(first.ports.ssh);
      expect(moved.https).toBe(first.ports.https);
      expect(moved.http).not.toBe(first.ports.http);
      expect(notices).toEqual([
        `web1: its HTTP port 127.0.0.1:${first.ports.http} is taken by another program; ` +
          `web1's HTTP moves to 127.0.0.1:${moved.http} (recorded in .keel/target/targets.json)`,
      ]);
      expect(up.notices).toEqual(notices);
      // Recorded: the next up keeps the new port even once the old one is free.
      await new Promise<void>((r) => squatter.close(() => r()));
      expect((await targetUp({ root, names: ['web1'] })).hosts[0]!.ports).toEqual(moved);
    } finally {
      squatter.close();
    }
  });

  it('stops at the inventory line that names an unknown target, with the command that starts it', async () => {
    await writeFile(join(root, 'inventories', 'typo.yaml'), 'hosts:\n  web1: {target: web1}\n  db1:\n    target: db1\n');
    const r = await runKeel(['provision', 'typo', '--yes'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('inventories/typo.yaml:4:13: unknown local target "db1" (known targets: web1)');
    expect(r.stderr).toContain('keel target up db1');
  });

  it('makes a Debian 13 target with --distro trixie: the probe reads what it is, and it keeps its release', async () => {
    await writeFile(join(root, 'inventories', 'dev13.yaml'), 'hosts:\n  web13: {target: web13, groups: [web]}\ngroups:\n  web: {roles: [demo]}\n');
    const up = await runKeel(['target', 'up', 'web13', '--distro', 'trixie'], { root });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^web13\s+running\s+trixie\s+ssh root@127\.0\.0\.1 -p \d+/m);
    const registry = JSON.parse(await readFile(join(root, '.keel', 'target', 'targets.json'), 'utf8'));
    expect(registry.targets.web13.distro).toBe('trixie');

    const r = await runKeel(['provision', 'dev13', '--yes', '--output', 'json'], { root });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json().hosts[0].facts).toEqual({
      distribution: 'debian',
      release: '13',
      codename: 'trixie',
      architecture: expect.any(String),
      service_manager: 'systemd',
    });
    const web13 = (await targetStatus({ root })).hosts.find((h) => h.name === 'web13')!;
    expect(web13.distro).toBe('trixie');
    await fetchUntil(web13.urls.http, 'Provisioned by keel on web13 (dev13)');

    const other = await runKeel(['target', 'up', 'web13', '--distro', 'bookworm'], { root });
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('web13 runs trixie, not bookworm: a target keeps the release it was made with');
    expect(other.stderr).toContain('keel target down web13, then keel target up web13 --distro bookworm');
    // Without --distro, an existing target stays what it is; the others are bookworm.
    const status = await runKeel(['target', 'status'], { root });
    expect(status.stdout).toMatch(/^web1\s+\S+\s+bookworm\s/m);
    expect(status.stdout).toMatch(/^web13\s+running\s+trixie\s/m);

    // A version pinned for Debian 12 on Debian 13: apt's "Unable to locate package" becomes the
    // package, the release and the variable (with where it is set).
    await writeFile(
      join(root, 'inventories', 'pg13.yaml'),
      'hosts:\n  web13:\n    target: web13\n    roles: [postgres]\n    vars:\n      postgres_version: 15\n      postgres_password: ""\n',
    );
    const pinned = await runKeel(['provision', 'pg13', '--yes', '--output', 'json'], { root });
    expect(pinned.code).toBe(2);
    const failed = pinned.json().hosts[0].resources.find((r: any) => r.status === 'failed');
    expect(failed.id).toBe('postgres/package:postgresql-15, postgresql-client-15');
    expect(failed.reason).toBe(
      'command failed with exit code 100: apt has no postgresql-15, postgresql-client-15 for this host, Debian 13 (trixie), ' +
        `${pinned.json().hosts[0].facts.architecture} (not in its release, or not in its apt sources); ` +
        'it comes from postgres_version = 15 (inventories/pg13.yaml:6:7): set postgres_version to what this release has',
    );
  });
});

const haveVagrant = hasBinary('vagrant');

describe.skipIf(!haveVagrant)(
  'a Vagrant machine (examples/vagrant, Docker provider) provisioned through vagrant ssh-config' +
    (haveVagrant ? '' : ' (skipped: vagrant is not installed; apt-get install vagrant)'),
  () => {
    let root: string;
    let env: NodeJS.ProcessEnv;
    const vagrantfileDir = join(keelPackageRoot(), 'examples', 'vagrant');
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'keel-vagrant-'));
      // Vagrant's state goes to the temp project, not into examples/vagrant/.vagrant.
      env = { ...process.env, VAGRANT_CWD: vagrantfileDir, VAGRANT_DOTFILE_PATH: join(root, '.vagrant'), KEEL_ROOT: root };
    });
    afterAll(async () => {
      if (!root) return;
      await vagrant(['destroy', '-f']).catch(() => {});
      // If destroy failed, the container Vagrant recorded goes anyway.
      const id = await readFile(join(root, '.vagrant', 'machines', 'default', 'docker', 'id'), 'utf8').catch(() => '');
      if (id.trim()) await docker(['rm', '-f', '-v', id.trim()]).catch(() => {});
      await rm(root, { recursive: true, force: true });
    });

    function vagrant(args: string[]): Promise<{ stdout: string; stderr: string; seconds: number }> {
      const started = Date.now();
      return new Promise((resolve, reject) =>
        execFile('vagrant', args, { env, cwd: root, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
          err
            ? reject(new Error(`vagrant ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
            : resolve({ stdout, stderr, seconds: (Date.now() - started) / 1000 }),
        ),
      );
    }

    it('vagrant up, vagrant ssh-config, keel provision twice: the page answers through the forwarded port', async () => {
      const up = await vagrant(['up', '--provider=docker']);
      expect(up.stdout).toContain("Bringing machine 'default' up with 'docker' provider");
      expect(up.stdout).toContain('SSH username: root');
      const id = (await readFile(join(root, '.vagrant', 'machines', 'default', 'docker', 'id'), 'utf8')).trim();
      // Everything on loopback only.
      for (const line of await publishedPorts(id)) expect(line).toMatch(/-> 127\.0\.0\.1:\d+$/);
      const ssh = await vagrant(['ssh-config']);
      expect(ssh.stdout).toMatch(/^Host default$/m);
      await writeFile(join(root, '.vagrant', 'ssh-config'), ssh.stdout);
      console.log(`vagrant up: ${up.seconds.toFixed(1)} s, vagrant ssh-config: ${ssh.seconds.toFixed(1)} s`);

      // The inventory of examples/vagrant, with its paths pointing at this project's .vagrant.
      const example = await readFile(join(vagrantfileDir, 'vagrant.yaml'), 'utf8');
      expect(example).toContain('ssh_config: .vagrant/ssh-config');
      await mkdir(join(root, 'inventories'));
      await writeFile(join(root, 'inventories', 'vagrant.yaml'), example.replaceAll(' .vagrant/', ' ../.vagrant/'));

      const started = Date.now();
      const first = await runKeel(['provision', 'vagrant', '--yes', '--accept-new-host-keys', '--output', 'json'], { root });
      expect(first.code, first.stderr).toBe(0);
      expect(first.json()).toMatchObject({ failed: 0, unreachable: 0 });
      const second = await runKeel(['provision', 'vagrant', '--yes', '--output', 'json'], { root });
      expect(second.code, second.stderr).toBe(0);
      expect(second.json()).toMatchObject({ changed: 0, failed: 0 });
      console.log(`keel provision through vagrant ssh-config: ${first.json().changed} changed, then 0, in ${((Date.now() - started) / 1000).toFixed(1)} s`);

      const http = (await docker(['port', id, '80/tcp'])).trim();
      expect(http).toMatch(/^127\.0\.0\.1:\d+$/);
      await fetchUntil(`http://${http}/`, 'Provisioned by keel on vagrant (vagrant)');
    });
  },
);
