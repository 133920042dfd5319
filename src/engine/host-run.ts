// One host's plan over its session: probe (1 round trip, with the lock when the run takes one),
// decide on the controller, then apply + verify (1 more round trip when something must change;
// a further pass only after a barrier, or for a resource a later one changed under it).
//
//   host-probe.ts      the probe script, with the run lock in it
//   decide.ts          every resource's decision from the facts (pure)
//   host-check.ts      --check: the decisions, reported; nothing more is sent
//   host-apply.ts      the passes of apply + verify, each resource's commands at most once
//   handler-ledger.ts  which handlers are owed, which failed, which a pass runs
//   host-record.ts     what the host has reported so far, and the HostResult it ends in
//
// run.ts does the same across hosts, and takes every host's lock before any host applies.
import type { HostSession } from '../ssh/types.js';
import { applyHost } from './host-apply.js';
import { checkHost } from './host-check.js';
import { probeHost, type HostRunOptions } from './host-probe.js';
import { HostRecord } from './host-record.js';
import type { HostPlan } from './plan.js';
import type { HostResult } from './results.js';

/** Probe, then check or apply: one host without a lock (tests, single-host tools). */
export async function runHost(plan: HostPlan, session: HostSession, opts: HostRunOptions): Promise<HostResult> {
  const p = await probeHost(plan, session, opts);
  if (p.kind !== 'probed') return new HostRecord(plan, session, opts.onResult, p.startedAt).finish(p.kind === 'failed' ? p.error : 'locked');
  return opts.check ? checkHost(p.plan, session, p, opts) : applyHost(p.plan, session, p, opts);
}
