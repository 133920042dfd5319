// Local targets without Docker: the record `keel target up` keeps (.keel/target/targets.json),
// an inventory host naming a target by `target:`, port picking, and the Vagrantfile staying in
// step with the run options of src/target/run-options.ts.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, ConfigErrors } from '../../src/errors.js';
import { loadInventory } from '../../src/inventory/load.js';
import { PORT_RANGE, isPortFree, pickFreePort, portInUseError } from '../../src/target/ports.js';
import { readRegistry, targetPaths, writeRegistry, type Registry } from '../../src/target/registry.js';
import { systemdRunArgs } from '../../src/target/run-options.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'keel-target-registry-'));
  vi.stubEnv('KEEL_SSH_CONFIG', path.join(dir, 'no-such-ssh-config'));
  vi.stubEnv('SSH_AUTH_SOCK', '');
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

const web1: Registry = {
  version: 1,
  targets: {
    web1: { ports: { ssh: 24022, http: 24080, https: 24443 }, hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBdJ05YvVI6EV29/HVLsv/QTd3FTE0z3EIX439kehfAv' },
  },
};

async function inventory(yaml: string): Promise<void> {
  await mkdir(path.join(dir, 'inventories'), { recursive: true });
  await writeFile(path.join(dir, 'inventories', 'dev.yaml'), yaml);
}

async function errorOf(p: Promise<unknown>): Promise<ConfigError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof ConfigError) return err;
  if (err instanceof ConfigErrors) return err.errors[0]!;
  throw new Error(`expected a ConfigError, got ${String(err)}`);
}

describe('targets.json', () => {
  it('is empty before any target, and reads back what was written', async () => {
    expect(await readRegistry(dir)).toEqual({ version: 1, targets: {} });
    await writeRegistry(dir, web1);
    expect(await readRegistry(dir)).toEqual(web1);
    expect(targetPaths(dir).registryFile).toBe(path.join(dir, '.keel', 'target', 'targets.json'));
  });

  it('refuses a damaged record with the file and the way out', async () => {
    await mkdir(targetPaths(dir).dir, { recursive: true });
    await writeFile(targetPaths(dir).registryFile, '{"version": 1, "targets": {"web1": {"ports": {"ssh": 22}}}}');
    const err = await errorOf(readRegistry(dir));
    expect(err.message).toBe('.keel/target/targets.json: not a keel target record: target "web1" needs ports {ssh, http, https}, each a port number');
    expect(err.hint).toMatch(/remove it/);
  });
});

describe('an inventory host with target: NAME', () => {
  it('gets the address, SSH port, user, key and known_hosts of the recorded target', async () => {
    await writeRegistry(dir, web1);
    await inventory('connection: {user: deploy, become: true}\nhosts:\n  web1:\n    target: web1\n  db:\n    address: 203.0.113.5\n');
    const inv = await loadInventory({ root: dir, env: 'dev' });
    const paths = targetPaths(dir);
    expect(inv.hosts[0]!.connection).toMatchObject({
      address: '127.0.0.1',
      port: 24022,
      user: 'root', // the target's, over the environment's connection
      keyFiles: [paths.keyFile],
      knownHostsFile: paths.knownHostsFile,
      localTarget: 'web1',
      become: true, // what the target does not set still comes from the inventory
    });
    // Other hosts keep the inventory's known_hosts.
    expect(inv.hosts[1]!.connection.knownHostsFile).toBeUndefined();
    expect(inv.hosts[1]!.connection.user).toBe('deploy');
  });

  it("lets the host's own keys override the target's", async () => {
    await writeRegistry(dir, web1);
    await inventory('hosts:\n  web1: {target: web1, user: deploy, key: deploy_key}\n');
    const c = (await loadInventory({ root: dir, env: 'dev' })).hosts[0]!.connection;
    expect(c).toMatchObject({ user: 'deploy', port: 24022, keyFiles: [path.join(dir, 'inventories', 'deploy_key')] });
  });

  it('names an unknown target at its line, with the command that starts it', async () => {
    await writeRegistry(dir, web1);
    await inventory('hosts:\n  web1: {target: web1}\n  worker1:\n    target: worker1\n');
    const err = await errorOf(loadInventory({ root: dir, env: 'dev' }));
    expect(err.message).toBe('inventories/dev.yaml:4:13: unknown local target "worker1" (known targets: web1)');
    expect(err.hint).toBe('start it: keel target up worker1');
  });

  it('says so when no target was ever started', async () => {
    await inventory('hosts:\n  web1: {target: web1}\n');
    const err = await errorOf(loadInventory({ root: dir, env: 'dev' }));
    expect(err.message).toBe('inventories/dev.yaml:2:18: unknown local target "web1" (no local targets yet)');
    expect(err.hint).toBe('start it: keel target up web1');
  });

  it('refuses target: together with ssh_config', async () => {
    await writeRegistry(dir, web1);
    await inventory('hosts:\n  web1: {target: web1, ssh_config: vagrant.ssh-config, ssh_host: default}\n');
    const err = await errorOf(loadInventory({ root: dir, env: 'dev' }));
    expect(err.message).toMatch(/host "web1" has both target: and ssh_config\/ssh_host; keep one/);
  });
});

describe('target ports', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('picks free ports in the range, never one already taken', async () => {
    const taken = new Set<number>();
    const seq = [0.5, 0.5, 0.25];
    const a = await pickFreePort(taken, () => seq.shift() ?? Math.random());
    const b = await pickFreePort(taken, () => seq.shift() ?? Math.random());
    expect(a).not.toBe(b);
    for (const p of [a, b]) expect(p >= PORT_RANGE.min && p <= PORT_RANGE.max).toBe(true);
    expect(taken).toEqual(new Set([a, b]));
  });

  it('sees a port another program listens on as taken', async () => {
    server = createServer();
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    expect(await isPortFree(port)).toBe(false);
  });

  it("reads the port out of Docker's port conflict errors", () => {
    expect(portInUseError('Bind for 127.0.0.1:24080 failed: port is already allocated')).toBe(24080);
    expect(portInUseError('listen tcp4 127.0.0.1:24443: bind: address already in use')).toBe(24443);
    expect(portInUseError('No such image: keel-target:x')).toBeUndefined();
  });
});

describe('examples/vagrant/Vagrantfile', () => {
  it('runs the container with the run options of src/target/run-options.ts', async () => {
    const text = await readFile(new URL('../../examples/vagrant/Vagrantfile', import.meta.url), 'utf8');
    const m = /d\.create_args = \[([^\]]*)\]/.exec(text);
    expect(m, 'd.create_args = [...] in the Vagrantfile').not.toBeNull();
    const args = [...m![1]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]);
    expect(args).toEqual(systemdRunArgs());
  });
});
