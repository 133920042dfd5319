// Orchestration across hosts: serial batches, max_fail_percentage, unreachable hosts.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoleLibrary } from '../../src/engine/roles.js';
import { compileHost } from '../../src/engine/compile.js';
import { runPlans } from '../../src/engine/run.js';
import type { Group, Host } from '../../src/inventory/types.js';
import { HostUnreachableError } from '../../src/errors.js';
import { LocalSession, localConnection } from '../helpers/local-session.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-run-'));
  mkdirSync(join(dir, 'roles', 'r'), { recursive: true });
  writeFileSync(
    join(dir, 'roles', 'r', 'role.yaml'),
    `
variables:
  r_fail: {type: boolean, default: false}
resources:
  - command: {run: "exit 1", unless: "false"}
    when: r_fail
  - file: {path: "{{base}}/{{inventory_hostname}}", content: "done"}
`,
  );
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function plans(names: string[], failing: string[]) {
  const lib = new RoleLibrary([join(dir, 'roles')]);
  return names.map((name) => {
    const host: Host = {
      name,
      groups: ['all', 'web'],
      roles: ['r'],
      vars: { base: dir, r_fail: failing.includes(name) },
      location: { file: 'inv.yaml' },
      connection: localConnection(),
    };
    return compileHost(host, lib, { env: 't', root: dir });
  });
}

const group = (g: Partial<Group>): Group => ({ name: 'web', roles: ['r'], vars: {}, children: [], location: { file: 'inv.yaml' }, ...g });
const connect = async (p: { host: { name: string } }) => new LocalSession(p.host.name, { KEEL_STATE_DIR: join(dir, 'state-' + p.host.name) });

describe('runPlans', () => {
  it('serial 1 with max_fail_percentage 0 stops after the first failing batch', async () => {
    const results = await runPlans(plans(['a', 'b', 'c'], ['b']), { check: false, diff: false, groups: [group({ serial: 1, maxFailPercentage: 0 })], connect });
    expect(results.map((r) => [r.name, r.failed, r.error ?? ''])).toEqual([
      ['a', 0, ''],
      ['b', 1, ''],
      ['c', 0, 'not run: an earlier batch failed past max_fail_percentage'],
    ]);
    expect(existsSync(join(dir, 'c'))).toBe(false);
  });

  it('without max_fail_percentage every batch runs', async () => {
    const results = await runPlans(plans(['a', 'b', 'c'], ['b']), { check: false, diff: false, groups: [group({ serial: 1 })], connect });
    expect(results.map((r) => r.failed)).toEqual([0, 1, 0]);
    expect(existsSync(join(dir, 'c'))).toBe(true);
  });

  it('an unreachable host is reported and the others finish', async () => {
    const results = await runPlans(plans(['a', 'b'], []), {
      check: false,
      diff: false,
      groups: [],
      forks: 1,
      connect: async (p) => {
        if (p.host.name === 'a') throw new HostUnreachableError('a', 'cannot connect to root@127.0.0.1:22: connection refused');
        return connect(p);
      },
    });
    expect(results[0]).toMatchObject({ name: 'a', unreachable: 1, error: 'a: cannot connect to root@127.0.0.1:22: connection refused' });
    expect(results[1]).toMatchObject({ name: 'b', unreachable: 0, failed: 0, changed: 1 });
  });
});
