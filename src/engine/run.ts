// Runs plans on many hosts: all connections at once (bounded by --forks), in `serial` batches
// when a group asks for it, stopping later batches past a group's max_fail_percentage.
// An unreachable host is reported and the others carry on.
import pLimit from 'p-limit';
import { KeelError } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { Group } from '../inventory/types.js';
import type { HostPlan } from './plan.js';
import type { HostResult, ResourceResult } from './results.js';
import { runHost, type HostRunOptions } from './host-run.js';

export type Connector = (plan: HostPlan) => Promise<HostSession>;

export interface RunOptions extends HostRunOptions {
  forks?: number;
  connect: Connector;
  groups: Group[];
  onHostDone?: (result: HostResult) => void;
}

export async function runPlans(plans: HostPlan[], opts: RunOptions): Promise<HostResult[]> {
  const results: HostResult[] = [];
  const limit = pLimit(Math.max(1, opts.forks ?? (plans.length || 1)));
  const { size, maxFail } = batching(plans, opts.groups);
  let aborted = false;
  for (let i = 0; i < plans.length; i += size) {
    const batch = plans.slice(i, i + size);
    if (aborted) {
      for (const p of batch) results.push(notRun(p, 'not run: an earlier batch failed past max_fail_percentage'));
      continue;
    }
    const done = await Promise.all(batch.map((plan) => limit(() => runOne(plan, opts))));
    results.push(...done);
    const failed = done.filter((h) => h.failed > 0 || h.unreachable > 0 || h.error).length;
    if (maxFail !== undefined && (failed / batch.length) * 100 > maxFail) aborted = true;
  }
  return results;
}

async function runOne(plan: HostPlan, opts: RunOptions): Promise<HostResult> {
  const started = Date.now();
  let session: HostSession | undefined;
  try {
    opts.onPhase?.(plan.host.name, 'connect');
    session = await opts.connect(plan);
  } catch (err) {
    const r = unreachable(plan, err, started);
    opts.onHostDone?.(r);
    return r;
  }
  try {
    const r = await runHost(plan, session, opts);
    opts.onHostDone?.(r);
    return r;
  } catch (err) {
    // A connection lost mid-run: the host failed; what it had applied is on the host.
    const r = unreachable(plan, err, started, session.channelsOpened);
    opts.onHostDone?.(r);
    return r;
  } finally {
    await session.close().catch(() => undefined);
  }
}

function unreachable(plan: HostPlan, err: unknown, started: number, roundTrips = 0): HostResult {
  const message = err instanceof KeelError ? err.message : err instanceof Error ? `${err.message}` : String(err);
  const hint = err instanceof KeelError ? err.hint : undefined;
  return {
    name: plan.host.name,
    ok: 0,
    changed: 0,
    failed: 0,
    unreachable: 1,
    resources: [],
    error: hint ? `${message}\nhint: ${hint}` : message,
    roundTrips,
    durationMs: Date.now() - started,
  };
}

function notRun(plan: HostPlan, reason: string): HostResult {
  const resources: ResourceResult[] = plan.resources.map((r) => ({ id: r.id, status: 'skipped', reason }));
  return { name: plan.host.name, ok: 0, changed: 0, failed: 0, unreachable: 0, resources, error: reason, roundTrips: 0, durationMs: 0 };
}

/** The strictest `serial` and `max_fail_percentage` among the groups of the hosts in the run. */
function batching(plans: HostPlan[], groups: Group[]): { size: number; maxFail?: number } {
  const names = new Set(plans.flatMap((p) => p.host.groups));
  let size = plans.length || 1;
  let maxFail: number | undefined;
  for (const g of groups) {
    if (!names.has(g.name)) continue;
    if (g.serial !== undefined) {
      const n = typeof g.serial === 'string' && g.serial.endsWith('%')
        ? Math.max(1, Math.floor((plans.length * parseFloat(g.serial)) / 100))
        : Number(g.serial);
      if (n > 0) size = Math.min(size, n);
    }
    if (g.maxFailPercentage !== undefined) maxFail = Math.min(maxFail ?? 100, g.maxFailPercentage);
  }
  return { size, maxFail };
}
