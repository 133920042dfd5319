// The local test targets themselves: systemd runs, sshd answers with the host key we
// recorded, the test users behave, and `keel target up/status/down` manage a project's targets.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { docker } from '../../src/target/docker-cli.js';
import { targetDown, targetStatus, targetUp } from '../../src/target/docker.js';
import { ensureClientKey } from '../../src/target/keys.js';
import { DEPLOYP_PASSWORD, startTarget, type TestTarget } from '../helpers/target.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Connect with ssh2, accepting only the host key listed for [host]:port in knownHostsFile. */
async function sshRun(opts: {
  port: number;
  user: string;
  keyFile: string;
  knownHostsFile: string;
  command: string;
  stdin?: string;
}): Promise<Run> {
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
    expect((await targetStatus({ root })).hosts).toEqual([]);
  });
});
