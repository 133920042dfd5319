// --check: what would change on one host, decided from the probe alone; nothing is sent after it.
import type { HostSession } from '../ssh/types.js';
import { decideAll } from './decide.js';
import type { HostRunOptions, Probed } from './host-probe.js';
import { HostRecord } from './host-record.js';
import type { HostPlan } from './plan.js';
import { okResult, type HostResult, type ResourceResult } from './results.js';
import { timed } from '../timing.js';

export function checkHost(plan: HostPlan, session: HostSession, probed: Probed, opts: HostRunOptions): HostResult {
  const record = new HostRecord(plan, session, opts.onResult, probed.startedAt);
  const decisions = timed('decide', () => decideAll(record.active, probed.probe, { wantDiff: opts.diff }));
  // What follows a change is decided on facts that change may alter: it is only "may change".
  let earlierChange: string | undefined;
  for (const r of record.active) {
    const d = decisions.get(r.index)!;
    if (d instanceof Error) {
      if (earlierChange) record.report(r, { id: r.id, status: 'changed', uncertain: true, reason: `may change: depends on ${earlierChange} (${d.message})` });
      else record.report(r, { id: r.id, status: 'failed', reason: d.message });
    } else if (d.kind === 'skip') {
      record.report(r, { id: r.id, status: 'skipped', reason: earlierChange ? `${d.reason} (may change after ${earlierChange})` : d.reason });
    } else if (d.kind === 'ok') record.report(r, okResult(r.id, d));
    else {
      record.report(
        r,
        earlierChange
          ? { id: r.id, status: 'changed', reason: `may change: ${d.reason} (after ${earlierChange})`, diff: d.diff, uncertain: true }
          : { id: r.id, status: 'changed', reason: d.reason, diff: d.diff },
      );
      earlierChange ??= r.id;
    }
  }
  const pending = probed.probe.pendingHandlers.filter((h) => plan.handlers.has(h));
  const extra: ResourceResult[] = pending.map((h) => ({
    id: `handler/${h}`,
    status: 'changed',
    reason: 'would run: pending from an earlier run that did not finish',
  }));
  return record.finish(undefined, extra);
}
