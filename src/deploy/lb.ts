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

export interface LoadBalancer {
  /** Whether any host of `batch` is behind a load balancer keel knows of. */
  balances(batch: HostDeploy[]): boolean;
  drain(batch: HostDeploy[]): Promise<boolean>;
  restore(batch: HostDeploy[]): Promise<boolean>;
  /** After a deploy that switched every host at once (no drain): role lb's members among
   *  `hosts` that wait drained (a host new to the group) are put in service; the hooks are not
   *  run. Nothing happens for a member already in service. */
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
  return [{ key: `${verb}-${lb.lbName}`, commands: [sh`${lb.lbctl} ${verb} ${names}`] }];
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
      const ok = r.code === 0;
      c.phases.recordLocal(h, {
        phase: verb,
        name: `deploy_lb_${verb}`,
        status: ok ? 'ok' : 'failed',
        durationMs: Date.now() - started,
        ...(r.code !== null && { code: r.code }),
        output: ok ? `$ ${command}\n${output}` : `$ ${command}\n${r.timedOut ? `timed out after ${c.hookTimeoutMs / 1000} s\n` : ''}${lastLines(output, 12)}`,
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
