// Taking web hosts out of the load balancer and putting them back, around a rolling deploy's
// batch (rolling.ts): drain (no new request goes to them, the ones in flight finish), then
// restore once they run the new release and passed its health checks. Two kinds, both used
// when both are configured:
//
//   role lb     nginx on a host of the inventory: `lbctl-<name> drain|restore HOST...` there,
//               in the run's lock (the lb host is locked with the others)
//   hooks       deploy_lb_drain / deploy_lb_restore: commands run on the controller for each
//               host (a cloud load balancer's CLI, with the credentials where keel runs)
import { spawn } from 'node:child_process';
import { lastLines } from '../errors.js';
import { sh } from '../shell/quote.js';
import type { Step } from '../engine/steps.js';
import type { HostDeploy, LbHost } from './config.js';
import type { Phases } from './phases.js';
import type { HostPlan } from '../engine/plan.js';
import type { AroundBatch, HostScriptRunner } from '../engine/run.js';

export interface LoadBalancer {
  /** Whether any host of `batch` is behind a load balancer keel knows of. */
  balances(batch: HostDeploy[]): boolean;
  drain(batch: HostDeploy[]): Promise<boolean>;
  restore(batch: HostDeploy[]): Promise<boolean>;
  /** After a deploy that switched every host at once (no drain): role lb's members among
   *  `hosts` that wait drained (a host new to the group, or left out by a run that died) are
   *  put in service; the hooks are not run, and a host drained by hand stays out. */
  restoreWaiting(hosts: HostDeploy[]): Promise<boolean>;
}

export interface LbContext {
  phases: Phases;
  /** Hosts with role lb in the run. */
  lbHosts: LbHost[];
  /** deploy_lb_drain / deploy_lb_restore per host ("" when unset), and its timeout. */
  hook: (h: HostDeploy, verb: 'drain' | 'restore') => string;
  hookTimeoutMs: number;
  env: Record<string, string>;
  mask: (s: string) => string;
}

export function loadBalancer(c: LbContext): LoadBalancer {
  const lbsOf = (batch: HostDeploy[]) => c.lbHosts.filter((lb) => batch.some((h) => lb.members.includes(h.name)));
  const hooked = (batch: HostDeploy[], verb: 'drain' | 'restore') => batch.filter((h) => c.hook(h, verb));
  const viaLb = async (batch: HostDeploy[], verb: 'drain' | 'restore') => {
    const lbs = lbsOf(batch);
    return !lbs.length || (await c.phases.phase(verb, lbs, (lb) => lbctlSteps(lb as LbHost, verb, batch)));
  };
  const act = async (batch: HostDeploy[], verb: 'drain' | 'restore') => {
    const lbOk = await viaLb(batch, verb);
    const hooksOk = await runHooks(c, hooked(batch, verb), verb);
    return lbOk && hooksOk;
  };
  return {
    balances: (batch) => lbsOf(batch).length > 0 || hooked(batch, 'drain').length > 0,
    drain: (batch) => act(batch, 'drain'),
    restore: (batch) => act(batch, 'restore'),
    restoreWaiting: (hosts) => viaLb(hosts, 'restore'),
  };
}

/** On the lb host: its members among `batch` drained or restored (lbctl waits for the requests
 *  in flight on a drain). */
function lbctlSteps(lb: LbHost, verb: 'drain' | 'restore', batch: HostDeploy[]): Step[] {
  const names = batch.map((h) => h.name).filter((n) => lb.members.includes(n));
  // --by deploy: a host drained by hand stays out (its restore is someone else's).
  return [{ key: `${verb}-${lb.lbName}`, commands: [sh`${lb.lbctl} ${verb} --by deploy ${names}`] }];
}

/** Each host's hook on the controller, the batch's in parallel; recorded as the host's step
 *  (`drain/deploy_lb_drain`). The environment says which host: KEEL_HOST (its inventory name),
 *  KEEL_HOST_ADDRESS, KEEL_PRIVATE_ADDRESS, KEEL_ENV, KEEL_RELEASE. */
async function runHooks(c: LbContext, hosts: HostDeploy[], verb: 'drain' | 'restore'): Promise<boolean> {
  const results = await Promise.all(
    hosts.map(async (h) => {
      const command = c.hook(h, verb);
      const started = Date.now();
      const env = {
        ...process.env,
        ...c.env,
        KEEL_HOST: h.name,
        KEEL_HOST_ADDRESS: h.plan.host.connection.address,
        KEEL_PRIVATE_ADDRESS: typeof h.plan.vars.private_address === 'string' ? h.plan.vars.private_address : h.name,
      };
      const r = await runLocal(command, env, c.hookTimeoutMs);
      const output = c.mask(r.output).slice(-4000);
      const shown = c.mask(`$ ${command}`);
      const ok = r.code === 0;
      c.phases.recordLocal(h, {
        phase: verb,
        name: `deploy_lb_${verb}`,
        status: ok ? 'ok' : 'failed',
        durationMs: Date.now() - started,
        ...(r.code !== null && { code: r.code }),
        output: ok ? `${shown}\n${output}` : `${shown}\n${r.timedOut ? `timed out after ${c.hookTimeoutMs / 1000} s\n` : ''}${lastLines(output, 12)}`,
      });
      return ok;
    }),
  );
  return results.every(Boolean);
}

function runLocal(command: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    let timedOut = false;
    const take = (d: Buffer) => (output = (output + d.toString()).slice(-16000));
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => {
      timedOut = true;
      // The hook's whole process group: a CLI it started must not outlive it.
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}${err.message}\n`, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

/**
 * keel provision in batches (a group's serial, --serial): each batch's hosts that are backends
 * of a role lb of the run leave it before they apply and come back once applied, with lbctl
 * on the lb host, so that a provision that restarts nginx or the app server on every web host
 * drops no request. Only what the provision took out goes back (lbctl --by provision): a host
 * waiting drained (new to the group, no release yet) or drained by hand stays so. Undefined
 * when no lb of the run has backends in it.
 */
export function provisionAroundBatch(plans: HostPlan[], notice: (message: string) => void): AroundBatch | undefined {
  const lbs = plans
    .filter((p) => p.host.roles.includes('lb'))
    .map((p) => {
      const group = typeof p.vars.lb_backend_group === 'string' ? p.vars.lb_backend_group : 'web';
      const name = typeof p.vars.lb_name === 'string' ? p.vars.lb_name : group;
      const members = ((p.vars.group_members as Record<string, { name: string }[]> | undefined)?.[group] ?? []).map((m) => m.name);
      return { host: p.host.name, lbctl: `/usr/local/sbin/lbctl-${name}`, name, members };
    })
    .filter((lb) => lb.members.length);
  if (!lbs.length) return undefined;
  const drained = new Map<string, string[]>();
  return {
    async before(batch, run) {
      drained.clear();
      try {
        return await drainBatch(batch, run);
      } catch (err) {
        return { ok: false, why: `the load balancer could not be asked to take the batch out: ${(err as Error).message}` };
      }
    },
    after: (batch, run) => restoreBatch(run),
  };

  async function drainBatch(batch: HostPlan[], run: HostScriptRunner): Promise<{ ok: true } | { ok: false; why: string }> {
    for (const lb of lbs) {
      const mine = batch.map((p) => p.host.name).filter((n) => lb.members.includes(n));
      if (!mine.length) continue;
      if (mine.length === lb.members.length) {
        notice(`${mine.join(', ')}: every backend of ${lb.host} (${lb.name}) is in this batch: not drained (nothing else would serve)`);
        continue;
      }
      // --by provision: one drained already (by hand, new to the group) stays as it is.
      const r = await run(lb.host, sh`${lb.lbctl} drain --by provision ${mine}`.text);
      if (r.code !== 0)
        return { ok: false, why: `${lb.host} could not take ${mine.join(', ')} out of ${lb.name} (exit ${r.code}):\n${lastLines(r.stderr, 6)}` };
      drained.set(lb.host, mine);
    }
    return { ok: true };
  }

  async function restoreBatch(run: HostScriptRunner): Promise<void> {
    for (const lb of lbs) {
      const back = drained.get(lb.host);
      if (!back?.length) continue;
      const r = await run(lb.host, sh`${lb.lbctl} restore --by provision ${back}`.text).catch((err: Error) => ({ code: null, stderr: err.message }));
      if (r.code !== 0)
        notice(
          `${back.join(', ')} stay out of ${lb.host} (${lb.name}): restore failed (exit ${r.code}): ${r.stderr.trim()}; ` +
            `put them back on ${lb.host} with: ${lb.lbctl} restore ${back.join(' ')}`,
        );
    }
  }
}
