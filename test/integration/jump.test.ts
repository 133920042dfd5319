// ProxyJump against real sshd: the controller reaches `web` only through `bastion`.
// `web` is addressed by its container IP on Docker's bridge, which only the bastion uses;
// all traffic stays between 127.0.0.1 and the two containers this test starts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';

let bastion: TestTarget;
let web: TestTarget;
let root: string;

beforeAll(async () => {
  [bastion, web] = await Promise.all([startTarget(), startTarget()]);
  root = mkdtempSync(join(tmpdir(), 'keel-jump-'));
  const webIp = web.container.getIpAddress(web.container.getNetworkNames()[0]!);
  // The web host is known by its bridge address (port 22), the bastion by 127.0.0.1:port.
  writeFileSync(join(root, 'known_hosts'), readFileSync(bastion.knownHostsFile, 'utf8') + `${webIp} ${web.hostKey}\n`);
  mkdirSync(join(root, 'inventories'));
  mkdirSync(join(root, 'roles', 'mark'), { recursive: true });
  writeFileSync(
    join(root, 'roles', 'mark', 'role.yaml'),
    'resources:\n  - file: {path: /root/reached-through-bastion, content: "{{inventory_hostname}}\\n"}\n',
  );
  writeFileSync(
    join(root, 'inventories', 'itest.yaml'),
    `known_hosts: ${join(root, 'known_hosts')}
hosts:
  bastion: {address: 127.0.0.1, port: ${bastion.port}, user: root, key: ${bastion.keyFile}}
  web: {address: ${webIp}, port: 22, user: root, key: ${web.keyFile}, jump: bastion, groups: [web]}
groups:
  web: {roles: [mark]}
`,
  );
});
afterAll(async () => {
  await Promise.all([bastion?.stop(), web?.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('ProxyJump through a bastion', () => {
  it('provisions a host reachable only through the bastion, twice', async () => {
    const first = await runKeel(['provision', 'itest', '--limit', 'web', '--output', 'json'], { root });
    expect(first.stderr).toBe('');
    expect(first.json()).toMatchObject({ changed: 1, failed: 0, unreachable: 0 });
    expect((await web.exec(['cat', '/root/reached-through-bastion'])).stdout).toBe('web\n');
    expect((await bastion.exec(['test', '-e', '/root/reached-through-bastion'])).code).not.toBe(0);
    const second = await runKeel(['provision', 'itest', '--limit', 'web', '--output', 'json'], { root });
    expect(second.json()).toMatchObject({ changed: 0, failed: 0 });
  });
});
