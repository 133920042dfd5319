// Signals a user sends at odd moments (issue 26.8), through keel's real CLI as a child process.
// No target is needed: a TCP listener on 127.0.0.1 that never speaks SSH keeps the connection
// in its handshake for as long as the test wants, so the timing is certain, not lucky.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, spawnKeel } from '../helpers/cli.js';
import { tempProject, writeRole } from '../helpers/project.js';
import { newEd25519PrivateKey } from '../../src/target/keys.js';

let silent: Server;
let port = 0;
let root: string;
const sockets: Socket[] = [];
let connected = 0;

beforeAll(async () => {
  silent = createServer((s) => {
    connected++;
    sockets.push(s);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  port = (silent.address() as { port: number }).port;
  root = tempProject('signals');
  writeRole(root, 'r', 'resources:\n  - file: {path: /tmp/keel-signals-test, content: "x"}\n');
  mkdirSync(join(root, 'keys'));
  writeFileSync(join(root, 'keys', 'id'), newEd25519PrivateKey(), { mode: 0o600 });
  writeFileSync(
    join(root, 'inventories', 'itest.yaml'),
    `known_hosts: ../known_hosts\nhosts:\n  web1: {address: 127.0.0.1, port: ${port}, user: root, key: ../keys/id, roles: [r]}\n`,
  );
  writeFileSync(join(root, 'known_hosts'), '');
});
afterAll(() => {
  for (const s of sockets) s.destroy();
  silent?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('signals', () => {
  it('SIGTERM while connecting exits 143 saying nothing was run, not 2 with the host "unreachable"', async () => {
    const child = await spawnKeel(['provision', 'itest'], { root });
    const done = exited(child);
    for (let i = 0; i < 600 && connected === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(connected).toBeGreaterThan(0);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code, r.stdout + r.stderr).toBe(143);
    expect(r.stderr).toMatch(/web1: nothing was run on it/);
    expect(r.stdout + r.stderr).not.toMatch(/unreachable/i);
  });
});
