// A rolling deploy (deploy_serial): the web hosts switch a batch at a time, built from the
// steps of switch.ts, each batch out of the load balancer while it switches (lb.ts):
//
//   for each batch:  start + check the new release beside the live one (nothing changes yet)
//                    drain the batch from the load balancer (the requests in flight finish)
//                    switch + reload + health on the batch (the workers with the first batch)
//                    restore the batch: it gets requests again, on the new release
//   then:            retire the old slots everywhere
//
// Migrations ran once before the first batch (run.ts). The next batch starts only once the
// previous one is healthy and back; a failure stops the rollout and puts every host that
// switched back on what it ran, so the fleet never ends on two releases. At any moment a host
// serves one release (it is drained while it switches) and the fleet at most two.
import { ConfigError } from '../errors.js';
import type { HostDeploy, LbHost } from './config.js';
import type { LoadBalancer } from './lb.js';
import { moveTraffic, retire, startBeside, stopNew, switchBack, type SwitchOutcome, type SwitchRequest } from './switch.js';

export interface RollRequest extends SwitchRequest {
  batches: HostDeploy[][];
  lb: LoadBalancer;
}

/** The web hosts (those with an app server) in batches of deploy_serial: a count, or a
 *  percentage of them (at least one host). */
export function batchesOf(hosts: HostDeploy[], serial: number | string): HostDeploy[][] {
  const web = hosts.filter((h) => h.appctl);
  const size =
    typeof serial === 'string' && serial.endsWith('%') ? Math.max(1, Math.floor((web.length * parseFloat(serial)) / 100)) : Math.max(1, Number(serial));
  const out: HostDeploy[][] = [];
  for (let i = 0; i < web.length; i += size) out.push(web.slice(i, i + size));
  return out;
}

/** A batch that is every backend of a load balancer would leave it nothing to send requests
 *  to while it switches: refused before anything starts. */
export function checkBatches(batches: HostDeploy[][], lbHosts: LbHost[], serial: number | string): void {
  for (const lb of lbHosts) {
    const whole = batches.find((b) => lb.members.every((m) => b.some((h) => h.name === m)));
    if (!whole) continue;
    throw new ConfigError(
      `deploy_serial: ${serial} would take ${lb.members.join(', ')} out of ${lb.name} together: every backend of load balancer ${lb.lbName}, ` +
        'so nothing would serve while they switch',
      undefined,
      {
        hint:
          lb.members.length > 1
            ? `a smaller deploy_serial (at most ${lb.members.length - 1}), so that a batch leaves a backend in service`
            : `a rolling deploy needs two backends or more; without deploy_serial ${lb.members[0]} switches in place ` +
              '(its nginx moves to the new release; no request fails)',
      },
    );
  }
}

export async function rollRelease(req: RollRequest): Promise<SwitchOutcome> {
  const { phases: p, hosts, to, batches, lb } = req;
  const others = hosts.filter((h) => !h.appctl);
  const switched: HostDeploy[] = [];
  const aborted = () => !!req.signal?.aborted;
  // The rollout stops: every host that switched goes back (the batch that failed with them).
  const stop = async (phase: string, failing: HostDeploy[] = []): Promise<SwitchOutcome> => {
    if (!switched.length && !failing.length) return { status: 'not switched', phase };
    const backOk = await switchBack(req, [...switched, ...failing]);
    return { status: 'switched back', phase, backOk };
  };

  for (const [i, batch] of batches.entries()) {
    const moving = i === 0 ? [...batch, ...others] : batch;
    if (aborted()) return stop('interrupted');
    if (!(await startBeside(req, batch))) return stop(p.failedPhase(['start', 'check']) ?? 'interrupted');
    const balanced = lb.balances(batch);
    if (balanced && !(await lb.drain(batch))) {
      await stopNew(req, batch);
      await lb.restore(batch);
      return stop('drain');
    }
    if (!(await moveTraffic(req, moving))) {
      const out = await stop(p.failedPhase(['switch', 'reload', 'health']) ?? 'interrupted', moving);
      if (balanced) await lb.restore(batch);
      return out;
    }
    p.setLive(moving, () => to);
    switched.push(...moving);
    if (balanced && !(await lb.restore(batch))) {
      const out = await stop('restore');
      await lb.restore(batch); // back on the old release: in service again if the balancer lets us
      return out;
    }
  }
  await retire(req, hosts);
  return { status: 'switched' };
}
