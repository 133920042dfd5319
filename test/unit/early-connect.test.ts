// keel provision connects to its hosts while it prepares the run (early-connections.ts). The
// run uses that connection (one connection per host in all); when the preparation fails after
// the hosts are known, the connection is closed and nothing ran on it; and no connection is
// made early when connecting could record a host key (--accept-new-host-keys).
import { mkdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runKeel } from '../helpers/cli.js';
import { until } from '../helpers/wait.js';
import { keyPair, runLocally, startServer, tempDir, type TestServer } from '../fixtures/ssh/server.js';

let keyFile: string;
let userPublic: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  const dir = await tempDir();
  const user = keyPair();
  keyFile = join(dir, 'id_ed25519');
  await writeFile(keyFile, user.private, { mode: 0o600 });
  userPublic = user.public;
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A project whose one host is an in-process SSH server running scripts in this machine's sh. */
async function project(roleYaml: string): Promise<{ root: string; server: TestServer }> {
  const root = await tempDir();
  const server = await startServer({ userKeys: [userPublic], exec: runLocally({ ...process.env, KEEL_STATE_DIR: join(root, 'state') }) });
  cleanups.push(() => server.close());
  mkdirSync(join(root, 'inventories'));
  mkdirSync(join(root, 'roles', 'r'), { recursive: true });
  writeFileSync(join(root, 'known_hosts'), `[127.0.0.1]:${server.port} ${server.hostKeyLines[0]}\n`);
  writeFileSync(
    join(root, 'inventories', 't.yaml'),
    `known_hosts: ../known_hosts\nhosts:\n  h1: {address: 127.0.0.1, port: ${server.port}, user: deploy, key: ${JSON.stringify(keyFile)}, roles: [r]}\n`,
  );
  writeFileSync(join(root, 'roles', 'r', 'role.yaml'), roleYaml.replaceAll('ROOT', root));
  return { root, server };
}

describe('connecting while the run is prepared', () => {
  it('the run uses the early connection: one connection, one shell', async () => {
    const { root, server } = await project('resources:\n  - directory: {path: ROOT/made}\n');
    const r = await runKeel(['provision', 't', '--output', 'json'], { root });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json().changed).toBe(1);
    expect(server.connections).toBe(1);
    expect(server.execs.map((e) => e.command)).toEqual(['sh -s']);
  });

  it('a preparation that fails after the hosts are known closes it, and nothing ran', async () => {
    const { root, server } = await project('resources:\n  - directory: {path: "ROOT/{{no_such_variable}}"}\n');
    const r = await runKeel(['provision', 't'], { root });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('variable "no_such_variable" is not defined');
    // Closed at once: made and then closed, or stopped before the host saw it.
    await until('no connection left open', async () => server.open === 0, { ms: 5000, every: 20 });
    expect(server.connections).toBeLessThanOrEqual(1);
    expect(server.execs).toEqual([]);
  });

  it('none with --accept-new-host-keys: a run that fails to compile records no host key', async () => {
    const { root, server } = await project('resources:\n  - directory: {path: "ROOT/{{no_such_variable}}"}\n');
    const r = await runKeel(['provision', 't', '--accept-new-host-keys'], { root });
    expect(r.code).toBe(1);
    expect(server.connections).toBe(0);
  });
});
