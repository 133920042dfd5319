// Provision across hosts. Every host is connected (at most --forks at once) and probed; a run
// that can change hosts takes each host's lock in that same first script. If any host is held
// by another run, every lock taken is given back and nothing changes. Then the hosts apply in
// `serial` batches (stopping later batches past a group's max_fail_percentage), and the locks
// are released by the run's last script on each host. An unreachable host is reported and the
// others carry on. SIGINT/SIGTERM (opts.signal) let go of the hosts at once: see pool.ts.
import { InterruptedError, LockedError } from '../errors.js';
import type { Group } from '../inventory/types.js';
import type { HostSession } from '../ssh/types.js';
import type { HostPlan } from './plan.js';
import type { HostResult, ResourceResult } from './results.js';
import { applyHost } from './host-apply.js';
import { checkHost } from './host-check.js';
import { probeHost, type HostRunOptions, type Probed } from './host-probe.js';
import { assertHeldSnippet, describeHolder, releaseScript, type LockHolder, type LockOwner } from './lock.js';
import type { ExecResult } from '../ssh/types.js';
import { PRELUDE, wrap } from './script-parts.js';
import { HostPool, type HostInterruptState } from './pool.js';

export type Connector = (plan: HostPlan) => Promise<HostSession>;

/** Runs shell on a host of the run, through its connection, once the lock it holds is checked. */
export type HostScriptRunner = (host: string, body: string) => Promise<ExecResult>;

/** Work around each batch of a provision (serial): taking its hosts out of a load balancer
 *  before they apply, and back after (deploy/lb.ts). A `before` that fails stops the run
 *  there: its batch and the later ones are not applied. */
export interface AroundBatch {
  before(batch: HostPlan[], run: HostScriptRunner): Promise<{ ok: true } | { ok: false; why: string }>;
  after(batch: HostPlan[], run: HostScriptRunner): Promise<void>;
}

export interface RunOptions extends HostRunOptions {
  forks?: number;
  connect: Connector;
  groups: Group[];
  /** The run's lock record; without one (--check) no lock is taken. */
  lock?: LockOwner;
  /** Aborted by SIGINT/SIGTERM; the reason is the signal's name. */
  signal?: AbortSignal;
  onHostDone?: (result: HostResult) => void;
  /** Only for a run that changes hosts, in batches (a group's serial, --serial). */
  aroundBatch?: AroundBatch;
  /** --serial: the batch size for this run, over the groups' serial. */
  serial?: number | string;
}

export async function runPlans(plans: HostPlan[], opts: RunOptions): Promise<HostResult[]> {
  const byName = new Map(plans.map((p) => [p.host.name, p]));
  const pool = new HostPool((host) => opts.connect(byName.get(host.name)!), opts.forks);
  // After an interrupt the abandoned work may still settle: nothing of it is reported.
  const live = () => !opts.signal?.aborted;
  const tracked: RunOptions = {
    ...opts,
    onPhase: (h, p) => {
      pool.setPhase(h, p);
      if (live()) opts.onPhase?.(h, p);
    },
    onResult: (h, r) => {
      if (live()) opts.onResult?.(h, r);
    },
    onStep: (h, st) => {
      if (live()) opts.onStep?.(h, st);
    },
    onHostDone: (r) => {
      pool.setPhase(r.name, 'done');
      if (live()) opts.onHostDone?.(r);
    },
  };
  const release = opts.lock ? releaseScript(opts.lock.run_id) : undefined;
  const work = provisionAll(plans, pool, tracked);
  work.catch(() => undefined); // after an interrupt nobody awaits it
  let interrupted: Promise<Error> | undefined;
  const interrupt = (signal: 'SIGINT' | 'SIGTERM') =>
    (interrupted ??= pool
      .abandon(
        plans.map((p) => p.host.name),
        () => release,
      )
      .then((states) => new InterruptedError(signal, interruptLines(states, !!release))));
  try {
    const results = await untilAborted(work, opts.signal, interrupt);
    // The work may settle first because of the interrupt (connections it closed look like
    // unreachable hosts): an interrupted run says so, with exit 130/143, not 2.
    if (opts.signal?.aborted) throw await interrupt(opts.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
    return results;
  } finally {
    await pool.close(() => release);
  }
}

async function provisionAll(plans: HostPlan[], pool: HostPool, opts: RunOptions): Promise<HostResult[]> {
  const results = new Map<string, HostResult>();
  const finish = (r: HostResult) => {
    results.set(r.name, r);
    opts.onHostDone?.(r);
  };
  const lock = opts.lock ? { take: opts.lock } : { peek: true as const };
  const probes = await pool.each(
    plans.map((p) => p.host),
    (s, host) => probeHost(byHost(plans, host.name), s, opts, lock),
  );
  const probed = new Map<string, Probed>();
  const held = new Map<string, LockHolder>();
  const take = (outcomes: typeof probes) => {
    for (const o of outcomes) {
      const plan = byHost(plans, o.host.name);
      held.delete(o.host.name);
      if (!o.ok) finish(unreachable(plan, o.error, o.roundTrips));
      else if (o.value.kind === 'locked') held.set(o.host.name, o.value.lock.holder);
      else if (o.value.kind === 'failed') finish(failedHost(plan, o.value.error, o.value.startedAt));
      else probed.set(o.host.name, o.value);
    }
  };
  take(probes);
  // Two runs started together may each have taken some hosts: the one that started first wins.
  // A younger live run gives its locks back (below, like any refused run); the older one waits
  // for them, then takes those hosts.
  const deadline = Date.now() + CONTENTION_WAIT_MS;
  while (opts.lock && held.size && probed.size && [...held.values()].every((h) => younger(h, opts.lock!)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 300));
    const again = plans.filter((p) => held.has(p.host.name));
    take(
      await pool.each(
        again.map((p) => p.host),
        (s, host) => probeHost(byHost(plans, host.name), s, opts, lock),
      ),
    );
  }
  const locked = [...held].map(([host, h]) => `${host} is locked by ${h.state === 'stale' ? 'a run that is gone (stale lock): ' : ''}${describeHolder(h)}`);
  if (locked.length) {
    const stale = locked.some((l) => l.includes('stale lock'));
    throw new LockedError(`${locked.join('\n')}\nnothing was changed on any host`, {
      hint: stale
        ? 'a stale lock stays until you clear it: check that no keel run is still working on the host, then `keel lock release <env>`'
        : 'wait for that run to finish (`keel lock status <env>` shows who holds what)',
    });
  }
  const { size, maxFail } = batching(plans, opts.groups, opts.serial);
  let aborted: string | undefined;
  const runOn: HostScriptRunner = async (name, body) => {
    const script = wrap(PRELUDE + assertHeldSnippet(opts.lock!.run_id) + body + '\n');
    const [o] = await pool.each([byHost(plans, name).host], (s) => s.runScript(script, { timeoutMs: 600_000 }));
    if (!o!.ok) throw new Error(o!.error);
    return o!.value;
  };
  const around = opts.aroundBatch && opts.lock && !opts.check && size < plans.length ? opts.aroundBatch : undefined;
  for (let i = 0; i < plans.length; i += size) {
    const batch = plans.slice(i, i + size).filter((p) => probed.has(p.host.name));
    if (!aborted && around && batch.length) {
      const b = await around.before(batch, runOn);
      if (!b.ok) aborted = `not run: ${b.why}`;
    }
    if (aborted) {
      for (const p of batch) finish(notRun(p, aborted));
      continue;
    }
    const outcomes = await pool.each(
      batch.map((p) => p.host),
      async (s, host) => {
        // The plan for the host's facts, as its probe chose it.
        const p = probed.get(host.name)!;
        return opts.check ? checkHost(p.plan, s, p, opts) : applyHost(p.plan, s, p, opts, opts.lock?.run_id);
      },
    );
    for (const o of outcomes) {
      const plan = byHost(plans, o.host.name);
      const p = probed.get(o.host.name)!;
      // A connection lost mid-run: the host failed; what it had applied is on the host.
      const r = o.ok ? { ...o.value, ...(p.facts && { facts: p.facts }) } : unreachable(plan, o.error, o.roundTrips, Date.now() - p.startedAt);
      if (o.ok && p.lock?.kind === 'held' && p.lock.holder.state === 'live') {
        r.notes = [`locked by another run while this check ran: ${describeHolder(p.lock.holder)}`];
      }
      finish(r);
      probed.delete(o.host.name); // its facts are done with: a big run does not hold every host's
    }
    const failed = outcomes.filter((o) => !o.ok || o.value.failed > 0 || o.value.error).length;
    if (around && batch.length) await around.after(batch, runOn);
    if (maxFail !== undefined && batch.length && (failed / batch.length) * 100 > maxFail) aborted = 'not run: an earlier batch failed past max_fail_percentage';
  }
  return plans.map((p) => results.get(p.host.name)!);
}

/** How long a run that started first waits for a younger one to give its locks back. */
const CONTENTION_WAIT_MS = 15_000;

/** A live run that started after `me` (or at the same instant, with a greater run id). */
function younger(h: LockHolder, me: LockOwner): boolean {
  const o = h.owner;
  if (h.state !== 'live' || !o.started || !o.run_id) return false;
  return o.started > me.started || (o.started === me.started && o.run_id > me.run_id);
}

function byHost(plans: HostPlan[], name: string): HostPlan {
  return plans.find((p) => p.host.name === name)!;
}

/** Resolve with `work`, or on abort settle with the error `onAbort` builds. */
export async function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined, onAbort: (s: 'SIGINT' | 'SIGTERM') => Promise<Error>): Promise<T> {
  if (!signal) return work;
  let stop!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    stop = () => {
      onAbort(signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT').then(reject, reject);
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/** One line per host: what it was doing and what happens to it now. */
export function interruptLines(states: HostInterruptState[], locks: boolean): string[] {
  const lock = (when: string) => (locks ? ` Its lock is released ${when}.` : '');
  return states.map((s) => {
    if (s.phase === 'done') return `${s.host}: had finished.`;
    if (s.phase === 'not started' || s.phase === 'connect')
      return `${s.host}: nothing was run on it.${s.phase === 'connect' ? lock('if the connection opens') : ''}`;
    if (s.cutOff) return `${s.host}: its ${s.phase} script was still being sent: none of it ran.${lock('now')}`;
    if (s.busy && !/^probe/.test(s.phase)) {
      return `${s.host} was in ${s.phase} and will finish it on its own; run again to see the result.${lock('when it finishes')}`;
    }
    return `${s.host}: stopped between steps (${s.phase}); nothing more was changed.${lock('now')}`;
  });
}

function unreachable(plan: HostPlan, error: string, roundTrips: number, durationMs = 0): HostResult {
  return { name: plan.host.name, ok: 0, changed: 0, failed: 0, unreachable: 1, resources: [], error, roundTrips, durationMs };
}

function failedHost(plan: HostPlan, error: string, started: number): HostResult {
  return { name: plan.host.name, ok: 0, changed: 0, failed: 0, unreachable: 0, resources: [], error, roundTrips: 1, durationMs: Date.now() - started };
}

function notRun(plan: HostPlan, reason: string): HostResult {
  const resources: ResourceResult[] = plan.resources.map((r) => ({ id: r.id, status: 'skipped', reason }));
  return { name: plan.host.name, ok: 0, changed: 0, failed: 0, unreachable: 0, resources, error: reason, roundTrips: 0, durationMs: 0 };
}

/** The strictest `serial` and `max_fail_percentage` among the groups of the hosts in the run;
 *  --serial instead of the groups' serial. */
function batching(plans: HostPlan[], groups: Group[], serial?: number | string): { size: number; maxFail?: number } {
  const names = new Set(plans.flatMap((p) => p.host.groups));
  let size = plans.length || 1;
  let maxFail: number | undefined;
  const sizeOf = (s: number | string) => (typeof s === 'string' && s.endsWith('%') ? Math.max(1, Math.floor((plans.length * parseFloat(s)) / 100)) : Number(s));
  if (serial !== undefined && sizeOf(serial) > 0) size = Math.min(size, sizeOf(serial));
  for (const g of groups) {
    if (!names.has(g.name)) continue;
    if (g.serial !== undefined && serial === undefined) {
      const n = sizeOf(g.serial);
      if (n > 0) size = Math.min(size, n);
    }
    if (g.maxFailPercentage !== undefined) maxFail = Math.min(maxFail ?? 100, g.maxFailPercentage);
  }
  return { size, maxFail };
}
