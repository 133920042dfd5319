// --check on a fresh host: nothing changes, nothing fails, and changes that depend on an
// earlier change (nginx's config before nginx is installed) are reported as "may change".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { tempProject, writeInventory } from '../helpers/project.js';
import { startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';

let target: TestTarget;
let root: string;

beforeAll(async () => {
  target = await startTarget();
  root = tempProject('check');
  writeInventory(root, target, { group: 'web', roles: ['demo'] });
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('provision --check on a fresh host', () => {
  it('reports what would change, marks dependent changes uncertain, and changes nothing', async () => {
    const r = await runKeel(['provision', 'itest', '--check', '--output', 'json'], { root });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = r.json();
    expect(j.check).toBe(true);
    expect(j.failed).toBe(0);
    const res = j.hosts[0].resources;
    expect(res[0]).toMatchObject({ id: 'demo/package:nginx, curl', status: 'changed' });
    expect(res[0].uncertain).toBeUndefined();
    const line = res.find((x: any) => x.id.startsWith('demo/line:'));
    expect(line).toMatchObject({ status: 'changed', uncertain: true });
    expect(line.reason).toMatch(/^may change: .* \(after demo\/package:nginx, curl\)$/);
    expect(j.hosts[0].roundTrips).toBe(1);
    expect((await target.exec(['sh', '-c', 'dpkg-query -W nginx 2>/dev/null; id demo 2>/dev/null; ls /srv 2>/dev/null'])).stdout).toBe('');
  });
});
