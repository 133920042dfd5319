// Rolling deploys' batches (deploy/rolling.ts) and role lb's files, without a host: which hosts
// switch together, what is refused before anything starts, what lbctl and the members file say.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { batchesOf, checkBatches } from '../../src/deploy/rolling.js';
import { loadBalancer } from '../../src/deploy/lb.js';
import type { Phases, StepRecord } from '../../src/deploy/phases.js';
import type { HostDeploy, LbHost } from '../../src/deploy/config.js';
import { compileHost } from '../../src/engine/compile.js';
import { RoleLibrary, builtinRolesDir } from '../../src/engine/roles.js';
import type { Host } from '../../src/inventory/types.js';
import { localConnection } from '../helpers/local-session.js';

const web = (name: string, appctl = true) => ({ name, appctl: appctl ? `/usr/local/sbin/appctl-app` : '' }) as HostDeploy;
const names = (b: HostDeploy[][]) => b.map((x) => x.map((h) => h.name));
const lb = (members: string[]) => ({ name: 'lb1', lbName: 'web', members }) as LbHost;

describe('deploy_serial batches', () => {
  const hosts = [web('web1'), web('worker1', false), web('web2'), web('web3')];
  it('a count, or a percentage of the web hosts (at least one); workers are not batched', () => {
    expect(names(batchesOf(hosts, 1))).toEqual([['web1'], ['web2'], ['web3']]);
    expect(names(batchesOf(hosts, 2))).toEqual([['web1', 'web2'], ['web3']]);
    expect(names(batchesOf(hosts, '50%'))).toEqual([['web1'], ['web2'], ['web3']]);
    expect(names(batchesOf(hosts, '70%'))).toEqual([['web1', 'web2'], ['web3']]);
    expect(names(batchesOf(hosts, '100%'))).toEqual([['web1', 'web2', 'web3']]);
  });

  it('a batch that is every backend of a load balancer is refused, with the largest that works', () => {
    expect(() => checkBatches(batchesOf(hosts, 1), [lb(['web1', 'web2', 'web3'])], 1)).not.toThrow();
    expect(() => checkBatches(batchesOf(hosts, 3), [lb(['web1', 'web2', 'web3'])], 3)).toThrow(
      'deploy_serial: 3 would take web1, web2, web3 out of lb1 together: every backend of load balancer web, so nothing would serve while they switch',
    );
    try {
      checkBatches(batchesOf([web('web1')], 1), [lb(['web1'])], 1);
      expect.unreachable();
    } catch (e) {
      expect((e as { hint: string }).hint).toContain('a rolling deploy needs two backends or more');
    }
  });
});

describe('role lb', () => {
  const host = (vars: Record<string, unknown> = {}): Host => ({
    name: 'lb1',
    groups: ['all', 'lb'],
    roles: ['lb'],
    vars,
    location: { file: 'inventories/production.yaml', line: 4 },
    connection: localConnection(),
  });
  const groupMembers = {
    web: [
      { name: 'web1', address: '127.0.0.1', private_address: 'web1' },
      { name: 'web2', address: '127.0.0.1', private_address: '10.0.1.6' },
    ],
  };
  const compile = (vars: Record<string, unknown> = {}) =>
    compileHost(host(vars), new RoleLibrary([builtinRolesDir()]), { env: 'production', root: process.cwd(), groupMembers });

  it("lists the group's hosts at their private address, and installs lbctl (valid sh)", () => {
    const plan = compile();
    const members = plan.resources.find((r) => r.id === 'lb/file:/etc/keel/lb/web/members')!;
    expect(members.params.content).toBe('web1 web1:80\nweb2 10.0.1.6:80\n');
    const lbctl = plan.resources.find((r) => r.id === 'lb/template:/usr/local/sbin/lbctl-web')!;
    const r = spawnSync('sh', ['-n'], { input: lbctl.params.content });
    expect(r.status, r.stderr.toString()).toBe(0);
  });

  it('an unknown backend group is an error naming the groups there are', () => {
    expect(() => compile({ lb_backend_group: 'webs' })).toThrow(/no group "webs" in the inventory \(groups: web\)/);
  });
});

describe('deploy_lb_drain / deploy_lb_restore: commands on this machine, per host', () => {
  const withHook = (name: string, drain: string) =>
    ({
      name,
      appctl: 'x',
      lbDrain: drain,
      lbRestore: '',
      plan: { host: { connection: { address: `10.0.0.${name.slice(-1)}` } }, vars: {} },
    }) as unknown as HostDeploy;
  const recorder = () => {
    const steps: { host: string; step: StepRecord }[] = [];
    const phases = { recordLocal: (h: HostDeploy, step: StepRecord) => steps.push({ host: h.name, step }) } as unknown as Phases;
    return { steps, phases };
  };
  const lbOf = (phases: Phases, timeoutMs = 10_000) =>
    loadBalancer({
      phases,
      lbHosts: [],
      hook: (h, verb) => (verb === 'drain' ? h.lbDrain : h.lbRestore),
      hookTimeoutMs: timeoutMs,
      env: { KEEL_ENV: 'production', KEEL_RELEASE: 'r1' },
      mask: (s) => s.replaceAll('tok3n', '******'),
    });

  it("runs each host's command with the host in its environment; what it says is the host's step, secrets masked", async () => {
    const { steps, phases } = recorder();
    const lb = lbOf(phases);
    const batch = [
      withHook('web1', 'echo "out $KEEL_HOST $KEEL_HOST_ADDRESS $KEEL_PRIVATE_ADDRESS $KEEL_ENV $KEEL_RELEASE tok3n"'),
      withHook('web2', 'echo ok'),
    ];
    expect(lb.balances(batch)).toBe(true);
    expect(await lb.drain(batch)).toBe(true);
    const web1 = steps.find((s) => s.host === 'web1')!.step;
    expect(web1).toMatchObject({ phase: 'drain', name: 'deploy_lb_drain', status: 'ok', code: 0 });
    expect(web1.output).toBe(
      '$ echo "out $KEEL_HOST $KEEL_HOST_ADDRESS $KEEL_PRIVATE_ADDRESS $KEEL_ENV $KEEL_RELEASE ******"\nout web1 10.0.0.1 web1 production r1 ******\n',
    );
    // No restore command: nothing runs for it.
    expect(await lb.restore(batch)).toBe(true);
    expect(steps.filter((s) => s.step.phase === 'restore')).toEqual([]);
  });

  it('a failing or hanging command fails its host step with the exit code and last lines; a hung one is killed', async () => {
    const { steps, phases } = recorder();
    expect(await lbOf(phases).drain([withHook('web1', 'echo "An error occurred (AccessDenied)" >&2; exit 254')])).toBe(false);
    expect(steps[0]!.step).toMatchObject({ status: 'failed', code: 254 });
    expect(steps[0]!.step.output).toContain('An error occurred (AccessDenied)');
    const started = Date.now();
    expect(await lbOf(phases, 300).drain([withHook('web2', 'sleep 30')])).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(steps[1]!.step.output).toContain('timed out after 0.3 s');
  });
});
