// Hosts whose compiled plans are identical share one (src/engine/plan-sharing.ts); a host
// whose plan differs in anything keeps its own.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileHost } from '../../src/engine/compile.js';
import { PlanSharing } from '../../src/engine/plan-sharing.js';
import { RoleLibrary } from '../../src/engine/roles.js';
import type { HostPlan } from '../../src/engine/plan.js';
import type { Host } from '../../src/inventory/types.js';
import { localConnection } from '../helpers/local-session.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-plan-sharing-'));
  mkdirSync(join(dir, 'roles', 'web', 'templates'), { recursive: true });
  writeFileSync(
    join(dir, 'roles', 'web', 'role.yaml'),
    'resources:\n  - file: {path: /etc/motd, content: "{{motd}}\\n"}\n  - template: {src: site.conf, dest: /etc/site.conf}\n    notify: reload\n' +
      'handlers:\n  reload: {run: "true"}\n',
  );
  writeFileSync(join(dir, 'roles', 'web', 'templates', 'site.conf'), '{{#if named}}server_name {{inventory_hostname}};{{/if}}\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const host = (name: string, vars: Record<string, unknown>): Host => ({
  name,
  groups: ['all'],
  roles: ['web'],
  vars,
  location: { file: 'inventories/t.yaml', line: 1 },
  connection: localConnection(),
});

describe('plan sharing', () => {
  it('hosts with the same plan share its resources and handlers; a host whose plan differs keeps its own', () => {
    const lib = new RoleLibrary([join(dir, 'roles')]);
    const compile = (h: Host) => compileHost(h, lib, { env: 't', root: dir });
    const sharing = new PlanSharing();
    const [a, b, c, d] = [
      host('web1', { motd: 'hi', named: false }),
      host('web2', { motd: 'hi', named: false }),
      host('web3', { motd: 'other', named: false }),
      host('web4', { motd: 'hi', named: true }),
    ].map((h) => sharing.share(compile(h)));
    expect(b!.resources).toBe(a!.resources);
    expect(b!.handlers).toBe(a!.handlers);
    expect(b!.host.name).toBe('web2');
    expect(b!.vars.inventory_hostname).toBe('web2');
    expect(c!.resources).not.toBe(a!.resources);
    // web4's template names the host: its own plan, with its own name in it.
    expect(d!.resources).not.toBe(a!.resources);
    expect(d!.resources[1]!.params.content).toBe('server_name web4;\n');
    // Shared or not, each plan is what compiling that host gives.
    expect(b).toEqual(compile(host('web2', { motd: 'hi', named: false })));
  });

  it('tells apart what JSON alone would not: each of these plans keeps its own, its twin shares it', () => {
    const plan = (params: object, handlers = new Map()) =>
      ({
        host: { name: 'h' },
        resources: [{ index: 0, id: 'x', role: 'r', typeName: 'file', type: { name: 'file' }, params, notify: [], location: { file: 'f' } }],
        handlers,
      }) as unknown as HostPlan;
    const distinct = [
      {},
      { mode: undefined },
      { mode: null },
      { n: NaN },
      { n: Infinity },
      { n: 0 },
      { n: -0 },
      { s: '\u0000undefined' },
      { m: new Map([['a', 1]]) },
      { m: new Map([['a', 2]]) },
      { m: new Set(['a']) },
      { l: [undefined] },
      { l: [null] },
      { b: Buffer.from('x') },
      { big: 1n },
    ];
    const sharing = new PlanSharing();
    const firsts = distinct.map((p) => plan(p));
    for (const p of firsts) expect(sharing.share(p).resources).toBe(p.resources);
    for (const [i, p] of distinct.entries()) {
      const twin = sharing.share(plan(structuredClone(p)));
      // A Buffer is shared only as the same object, a BigInt not at all (JSON cannot write it).
      const shares = !('b' in p) && !('big' in p);
      if (shares) expect(twin.resources, JSON.stringify(Object.keys(p))).toBe(firsts[i]!.resources);
      else expect(twin.resources).not.toBe(firsts[i]!.resources);
    }
    // Handlers count too.
    const withHandler = sharing.share(plan({}, new Map([['reload', { run: 'true' }]])));
    expect(withHandler.resources).not.toBe(firsts[0]!.resources);
  });

  it('a plan holding resources it gave out already (a compile that reused a section) is not compared again', () => {
    let reads = 0;
    const params = {
      get content() {
        reads++;
        return 'x';
      },
    };
    const resources = [{ index: 0, id: 'x', type: { name: 'file' }, params, notify: [], location: { file: 'f' } }];
    const handlers = new Map();
    const plan = (name: string) => ({ host: { name }, resources, handlers }) as unknown as HostPlan;
    const sharing = new PlanSharing();
    expect(sharing.share(plan('a')).resources).toBe(resources);
    const afterFirst = reads;
    expect(afterFirst).toBeGreaterThan(0);
    for (const name of ['b', 'c', 'd']) expect(sharing.share(plan(name)).host.name).toBe(name);
    expect(reads).toBe(afterFirst);
  });
});
