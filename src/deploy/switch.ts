// Putting a release live on every host of a deploy at once (keel deploy after its build, keel
// rollback), so that no request fails and a release that fails its checks never serves one:
//
//   start   web hosts: the release starts in appctl's idle slot, beside the live one
//   check   web hosts: its health checks, against that slot directly (no user reaches it)
//           ---- a failure up to here: the new slots stop; nothing live changed ----
//   switch  every host: the timers' jobs wait (hold), the workers stop taking jobs (quiesce.d),
//           current -> the release, nginx -> new slot
//   reload  every host: workers and daemons restart on it (reload.d), after_switch hooks
//   health  every host: through nginx, and every process counts as up (check.d)
//           ---- a failure from the switch on: every host back on what it ran ----
//   retire  web hosts: the old slot drains and stops; the timers go on
//
// Workers and daemons move only once the web hosts' new release has passed its checks, and
// timers are held through the switch: a release that fails never runs a job.
import type { Step } from '../engine/steps.js';
import type { HostDeploy } from './config.js';
import type { Phases } from './phases.js';
import { healthSteps, holdSteps, hookSteps, quiesceSteps, releaseDir, reloadSteps, switchSteps, unlinkSteps } from './scripts.js';
import { idleSlot, slotCheckSteps, slotEnsureSteps, slotStartSteps, slotStopSteps, slotSwitchSteps, slotsOffSteps, type Slot } from './web-scripts.js';

export interface SwitchRequest {
  phases: Phases;
  hosts: HostDeploy[];
  /** The release every host goes to. */
  to: string;
  /** Maintenance is on: the check through nginx sees only nginx_health_path. */
  maintenance: boolean;
  signal?: AbortSignal;
}

export type SwitchOutcome =
  /** Every host runs `to`. */
  | { status: 'switched' }
  /** Its checks failed (or an interrupt came) before any traffic moved: nothing live changed. */
  | { status: 'not switched'; phase: string }
  /** It failed after the switch: every host is back on what it ran (or unknown, see Phases). */
  | { status: 'switched back'; phase: string; backOk: boolean };

export async function switchRelease(req: SwitchRequest): Promise<SwitchOutcome> {
  const { phases: p, hosts, to } = req;
  if (
    !(await startBeside(
      req,
      hosts.filter((h) => h.appctl),
    ))
  )
    return { status: 'not switched', phase: p.failedPhase(['start', 'check']) ?? 'interrupted' };
  if (await moveTraffic(req, hosts)) {
    p.setLive(hosts, () => to);
    await retire(req, hosts);
    return { status: 'switched' };
  }
  const phase = p.failedPhase(['switch', 'reload', 'health']) ?? 'interrupted';
  const backOk = await switchBack(req, hosts);
  return { status: 'switched back', phase, backOk };
}

/** The slot a host's new release runs in, and the one its old release runs in ("" if none). */
export function slotsOf(p: Phases): { newSlot: (h: HostDeploy) => Slot; oldSlot: (h: HostDeploy) => Slot | '' } {
  return { newSlot: (h) => idleSlot(p.before(h).slot), oldSlot: (h) => p.before(h).slot as Slot | '' };
}

/** `web` start the release in their idle slot and pass its checks there; false (the new slots
 *  stopped again) if one did not, or on an interrupt. Nothing live changes. */
export async function startBeside(req: SwitchRequest, web: HostDeploy[]): Promise<boolean> {
  const { phases: p, to } = req;
  const { newSlot } = slotsOf(p);
  const aborted = () => !!req.signal?.aborted;
  const started = await p.phase('start', web, (h) => slotStartSteps(h, newSlot(h), to));
  const checked = started && !aborted() && (await p.waitPhase('check', web, (h, round) => slotCheckSteps(h, newSlot(h), to, round), req.signal));
  if (checked && !aborted()) return true;
  await stopNew(req, web);
  return false;
}

/** The new slots that got no traffic stop again. */
export async function stopNew(req: SwitchRequest, web: HostDeploy[]): Promise<void> {
  const { newSlot } = slotsOf(req.phases);
  await req.phases.phase('stop-new', web, (h) => slotStopSteps(h, newSlot(h)));
}

/** `hosts` switch to the release (its new slot gets their nginx's traffic), their workers
 *  reload on it, and they pass the health checks; false at the first phase that fails, or on
 *  an interrupt. From here a failure means switching back (switchBack). */
export async function moveTraffic(req: SwitchRequest, hosts: HostDeploy[]): Promise<boolean> {
  const { phases: p, to } = req;
  const { newSlot } = slotsOf(p);
  const aborted = () => !!req.signal?.aborted;
  p.markInDoubt(hosts);
  return (
    (await p.phase('switch', hosts, (h) => [
      ...holdSteps(h, true),
      ...quiesceSteps(h),
      ...switchSteps(h, to),
      ...(h.appctl ? slotSwitchSteps(h, newSlot(h)) : []),
    ])) &&
    !aborted() &&
    (await p.phase('reload', hosts, (h) => [...reloadSteps(h, 'auto'), ...hookSteps(h, releaseDir(h, to), 'after_switch')])) &&
    !aborted() &&
    (await p.waitPhase('health', hosts, (h, round) => healthSteps(h, { maintenance: req.maintenance, roundSeconds: round }), req.signal)) &&
    !aborted()
  );
}

/** Once every host runs the release: the old slots drain and stop; the timers go on. */
export async function retire(req: SwitchRequest, hosts: HostDeploy[]): Promise<void> {
  const { oldSlot } = slotsOf(req.phases);
  await req.phases.phase('retire', hosts, (h) => [...(h.appctl && oldSlot(h) ? slotStopSteps(h, oldSlot(h) as Slot) : []), ...holdSteps(h, false)]);
}

/** `hosts` back on what they ran before: the old slot (still running) takes the traffic again,
 *  current goes back, the workers restart on it; then the new slots stop. A host that ran
 *  nothing before runs nothing again. True if every one is back and healthy. */
export async function switchBack(req: SwitchRequest, hosts: HostDeploy[]): Promise<boolean> {
  const { phases: p } = req;
  const { newSlot, oldSlot } = slotsOf(p);
  const prev = (h: HostDeploy) => p.before(h).live;
  const back = hosts.filter((h) => prev(h));
  const none = hosts.filter((h) => !prev(h));
  const steps = (h: HostDeploy): Step[] => {
    if (!prev(h)) return [...unlinkSteps(h), ...(h.appctl ? slotsOffSteps(h) : []), ...reloadSteps(h, true)];
    const old = oldSlot(h);
    return [
      ...(h.appctl && old ? slotEnsureSteps(h, old, prev(h)) : []),
      ...quiesceSteps(h),
      ...switchSteps(h, prev(h)),
      ...(h.appctl && old ? slotSwitchSteps(h, old) : []),
      ...reloadSteps(h, 'auto'),
    ];
  };
  const ok = await p.phase('rollback', hosts, steps);
  // After an interrupt, traffic is back on what ran before; its health is looked at for one
  // round, not waited for: the user asked to stop.
  const healthy = await p.waitPhase('rollback-health', back, (h, round) => healthSteps(h, { maintenance: req.maintenance, roundSeconds: round }), req.signal);
  p.setLive(back, prev);
  p.setLive(none, () => '');
  await p.phase('stop-new', hosts, (h) => [...(h.appctl && oldSlot(h) ? slotStopSteps(h, newSlot(h)) : []), ...holdSteps(h, false)]);
  return ok && healthy;
}
