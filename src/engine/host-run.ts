// One host's plan over its session: probe (1 round trip, with the lock when the run takes one),
// decide on the controller, then apply + verify (1 more round trip when something must change;
// a further pass only after a barrier, or for a resource a later one changed under it).
//
// A resource's commands run at most once per run. A `command` that ran and whose guard is still
// unmet fails ("ran, but /x still does not exist") instead of running again; a declarative
// resource (a file, a directory...) that still differs after it ran may be applied once more
// (a package installed after it may have rewritten it), then fails.
import { KeelError } from '../errors.js';
import { lastLines } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { DecideContext, Decision } from '../resources/types.js';
import type { HostCondition, HostPlan, PlannedHandler, PlannedResource } from './plan.js';
import type { HostResult, ResourceResult } from './results.js';
import { tally } from './results.js';
import { buildApplyScript, buildProbeScript, handlerStep, parseApply, parseProbe, type ApplyHandler, type ProbeResult } from './script.js';
import { newNonce } from './script-parts.js';
import type { Step } from './steps.js';
import { acquireSnippet, assertHeldSnippet, parseLockReport, peekSnippet, type LockOwner, type LockReport } from './lock.js';

export interface HostRunOptions {
  check: boolean;
  diff: boolean;
  probeTimeoutMs?: number;
  applyTimeoutMs?: number;
  /** Live progress: a resource reached a final status. */
  onResult?: (host: string, result: ResourceResult) => void;
  onPhase?: (host: string, phase: string) => void;
}

type ChangeDecision = Extract<Decision, { kind: 'change' }>;
/** A `when: {exists/missing}` condition false on the host: nothing to decide, reported skipped. */
interface HostSkip {
  kind: 'skip';
  reason: string;
}
type Decisions = Map<number, Decision | HostSkip | Error>;

export type ProbeOutcome =
  | { kind: 'probed'; probe: ProbeResult; lock?: LockReport; startedAt: number }
  | { kind: 'locked'; lock: Extract<LockReport, { kind: 'held' }>; startedAt: number }
  | { kind: 'failed'; error: string; startedAt: number };

/** Probe the host. `lock`: take the run lock in the same script (owner), or only look at it. */
export async function probeHost(
  plan: HostPlan,
  session: HostSession,
  opts: HostRunOptions,
  lock?: { take: LockOwner } | { peek: true },
): Promise<ProbeOutcome> {
  const startedAt = Date.now();
  opts.onPhase?.(plan.host.name, 'probe');
  const nonce = newNonce();
  const prefix = !lock ? '' : 'take' in lock ? acquireSnippet(nonce, lock.take) : peekSnippet(nonce);
  const active = plan.resources.filter((r) => !r.skipped);
  const out = await session.runScript(buildProbeScript(active, nonce, { wantDiff: opts.diff }, prefix), {
    timeoutMs: opts.probeTimeoutMs ?? 300_000,
  });
  const lockReport = lock ? parseLockReport(out.stdout, nonce) : undefined;
  if (lockReport?.kind === 'held' && 'take' in lock!) return { kind: 'locked', lock: lockReport, startedAt };
  const probe = parseProbe(out.stdout, nonce, active);
  if (out.code !== 0 || !probe.complete) {
    return { kind: 'failed', error: `probe script failed (exit ${out.code ?? out.signal}):\n${lastLines(out.stderr || out.stdout, 10)}`, startedAt };
  }
  return { kind: 'probed', probe, lock: lockReport, startedAt };
}

/** Probe, then check or apply: one host without a lock (tests, single-host tools). */
export async function runHost(plan: HostPlan, session: HostSession, opts: HostRunOptions): Promise<HostResult> {
  const p = await probeHost(plan, session, opts);
  if (p.kind !== 'probed') return new HostRun(plan, session, opts, p.startedAt).finish(p.kind === 'failed' ? p.error : 'locked');
  return opts.check ? checkHost(plan, session, p, opts) : applyHost(plan, session, p, opts);
}

/** --check: what would change, from the probe alone. */
export function checkHost(plan: HostPlan, session: HostSession, probed: Extract<ProbeOutcome, { kind: 'probed' }>, opts: HostRunOptions): HostResult {
  const run = new HostRun(plan, session, opts, probed.startedAt);
  const decisions = decideAll(run.active, probed.probe, run.ctx);
  let earlierChange: string | undefined;
  for (const r of run.active) {
    const d = decisions.get(r.index)!;
    if (d instanceof Error) {
      if (earlierChange) run.report(r, { id: r.id, status: 'changed', uncertain: true, reason: `may change: depends on ${earlierChange} (${d.message})` });
      else run.report(r, { id: r.id, status: 'failed', reason: d.message });
    } else if (d.kind === 'skip') {
      run.report(r, { id: r.id, status: 'skipped', reason: earlierChange ? `${d.reason} (may change after ${earlierChange})` : d.reason });
    } else if (d.kind === 'ok') run.report(r, { id: r.id, status: 'ok', reason: d.reason });
    else {
      run.report(r, earlierChange
        ? { id: r.id, status: 'changed', reason: `may change: ${d.reason} (after ${earlierChange})`, diff: d.diff, uncertain: true }
        : { id: r.id, status: 'changed', reason: d.reason, diff: d.diff });
      earlierChange ??= r.id;
    }
  }
  const pending = probed.probe.pendingHandlers.filter((h) => plan.handlers.has(h));
  const extra: ResourceResult[] = pending.map((h) => ({ id: `handler/${h}`, status: 'changed', reason: 'would run: pending from an earlier run that did not finish' }));
  return run.finish(undefined, extra);
}

/**
 * Apply what must change, verify in the same round trip. A pass stops after a barrier (a
 * package install, which creates files and units later resources look at), so what follows is
 * decided again on fresh facts. Handlers run once, in the final pass. `runId`: the run holds
 * the host's lock; every apply script checks it still does before it changes anything.
 */
export async function applyHost(
  plan: HostPlan,
  session: HostSession,
  probed: Extract<ProbeOutcome, { kind: 'probed' }>,
  opts: HostRunOptions,
  runId?: string,
): Promise<HostResult> {
  const run = new HostRun(plan, session, opts, probed.startedAt);
  const { active } = run;
  let decisions = decideAll(active, probed.probe, run.ctx);
  const pending = probed.probe.pendingHandlers;
  const ran = new Map<number, { decision: ChangeDecision; times: number }>();
  let owed = new Set(pending.filter((h) => plan.handlers.has(h)));
  const forget = pending.filter((h) => !plan.handlers.has(h));
  // Handlers that failed in this run stay pending for the next one; not run again now.
  const failedHandlers = new Set<string>();
  const coveredBy = coverers(plan);
  const maxPasses = 3 + active.filter((r) => r.type.barrier).length;

  for (const r of active) {
    const d = decisions.get(r.index)!;
    if (!(d instanceof Error) && d.kind === 'ok') run.report(r, { id: r.id, status: 'ok', reason: d.reason });
    if (!(d instanceof Error) && d.kind === 'skip') run.report(r, { id: r.id, status: 'skipped', reason: d.reason });
  }
  for (let pass = 1; pass <= maxPasses; pass++) {
    const failedDecision = active.find((r) => decisions.get(r.index) instanceof Error);
    const changes = active.filter((r) => isChange(decisions.get(r.index)));
    // A resource whose decision failed stops the run at that point, like a failed command.
    const candidates = changes.filter((r) => r.index < (failedDecision?.index ?? Infinity));
    const cut = barrierCut(candidates);
    const final = cut === candidates.length;
    const applyHandler = (h: PlannedHandler): ApplyHandler => ({
      key: `H${ranHandlers.length}`, id: h.id, run: h.run, covers: h.covers, coveredBy: coveredBy.get(h.id),
    });
    const ranHandlers: ApplyHandler[] = [];
    const due = () => [...plan.handlers.values()].filter((h) => owed.has(h.id) && !failedHandlers.has(h.id));
    const steps: Step[] = [];
    for (const r of candidates.slice(0, cut)) {
      // flush_handlers: what is due so far runs first (nginx must serve the site just
      // written before certbot asks the ACME server to fetch from it).
      if (r.flushHandlers) {
        const only = r.flushHandlers === true ? undefined : new Set(r.flushHandlers);
        for (const h of due().filter((x) => !only || only.has(x.id))) {
          const ah = applyHandler(h);
          ranHandlers.push(ah);
          steps.push(handlerStep(ah));
        }
      }
      steps.push({ key: String(r.index), commands: (decisions.get(r.index) as ChangeDecision).commands, notify: r.notify, ...(r.covers && { forget: r.covers }) });
      for (const h of r.notify) owed.add(h);
    }
    const handlers: ApplyHandler[] = [];
    if (final) {
      for (const h of due()) {
        const ah = applyHandler(h);
        ranHandlers.push(ah);
        handlers.push(ah);
      }
    }
    if (!steps.length && !handlers.length && !(pass === 1 && forget.length)) {
      if (failedDecision) return run.failDecision(failedDecision, decisions, ran);
      break;
    }

    opts.onPhase?.(run.host, pass === 1 ? 'apply' : `apply (pass ${pass})`);
    const nonce = newNonce();
    const script = buildApplyScript({
      nonce, steps, handlers, forget: pass === 1 ? forget : [], verify: active, ctx: run.ctx,
      prefix: runId ? assertHeldSnippet(runId) : undefined,
    });
    const out = await session.runScript(script, { timeoutMs: opts.applyTimeoutMs ?? 3_600_000 });
    const applied = parseApply(out.stdout, nonce);
    for (const step of applied.steps) {
      if (step.key.startsWith('H')) {
        const h = ranHandlers.find((x) => x.key === step.key)!;
        run.handlerResult(h, step);
        if (step.status === 'failed') failedHandlers.add(h.id);
        continue;
      }
      const r = plan.resources[Number(step.key)]!;
      const d = decisions.get(r.index) as ChangeDecision;
      if (step.status === 'changed') ran.set(r.index, { decision: d, times: (ran.get(r.index)?.times ?? 0) + 1 });
      else run.report(r, { id: r.id, status: 'failed', reason: `command failed with exit code ${step.code}`, output: step.output, code: step.code });
    }
    const failedStep = applied.steps.find((s) => s.status === 'failed' && !s.key.startsWith('H'));
    if (failedStep || out.code !== 0 || applied.verifyOutput === undefined) {
      for (const r of changes) {
        if (run.status(r) === 'failed' || ran.has(r.index)) continue;
        run.report(r, { id: r.id, status: 'skipped', reason: failedStep ? 'not run: an earlier resource failed' : 'not run' });
      }
      run.reportChanged(ran);
      if (failedStep) return run.finish();
      const during = applied.interruptedKey ? ` during ${run.describeKey(applied.interruptedKey)}` : '';
      return run.finish(`apply script ended early (exit ${out.code ?? out.signal})${during}:\n${lastLines(out.stderr || '(no output)', 10)}`);
    }
    // Handlers that ran are paid; failed ones stay pending on the host and owed here.
    if (final) owed = new Set(failedHandlers);
    // Verify: decide again on fresh facts. Resources that changed and now decide ok are done.
    const verify = parseProbe(applied.verifyOutput, nonce, active);
    decisions = decideAll(active, verify, run.ctx);
    for (const [index, r] of ran) {
      // Commands without a guard (and restarts) always "change": they ran, that is all we know.
      if (r.decision.unverifiable) decisions.set(index, { kind: 'ok', reason: 'ran' });
    }
    // At most once: what ran and still differs fails now rather than running again.
    for (const r of active) {
      const d = decisions.get(r.index);
      const done = ran.get(r.index);
      if (!done || !isChange(d)) continue;
      if (r.type.runsOnce || done.times >= 2) {
        const still = r.type.unmet?.(r.params, verify.facts.get(r.index) ?? {}) ?? (d as ChangeDecision).reason;
        decisions.set(r.index, new KeelError(`ran, but ${still}`));
        ran.delete(r.index);
      }
    }
    const again = active.filter((r) => isChange(decisions.get(r.index)));
    const broken = active.find((r) => decisions.get(r.index) instanceof Error);
    if (broken && !again.some((r) => r.index < broken.index)) return run.failDecision(broken, decisions, ran);
    if (!again.length && !broken && (final || owed.size === 0)) break;
    if (pass === maxPasses) {
      for (const r of again) {
        run.report(r, { id: r.id, status: 'failed', reason: `did not converge after ${maxPasses} passes: ${(decisions.get(r.index) as ChangeDecision).reason}` });
      }
    }
  }
  run.reportChanged(ran);
  return run.finish();
}

/** What one host's run has reported so far, and how it ends. */
class HostRun {
  readonly host: string;
  readonly ctx: DecideContext;
  readonly active: PlannedResource[];
  private readonly results = new Map<number, ResourceResult>();
  private handlersRun: ResourceResult[] = [];

  constructor(
    private readonly plan: HostPlan,
    private readonly session: HostSession,
    private readonly opts: HostRunOptions,
    private readonly started: number,
  ) {
    this.host = plan.host.name;
    this.ctx = { wantDiff: opts.diff };
    this.active = plan.resources.filter((r) => !r.skipped);
    for (const r of plan.resources) if (r.skipped) this.report(r, { id: r.id, status: 'skipped', reason: r.skipped });
  }

  report(r: PlannedResource, res: ResourceResult): void {
    this.results.set(r.index, res);
    this.opts.onResult?.(this.host, res);
  }

  status(r: PlannedResource): string | undefined {
    return this.results.get(r.index)?.status;
  }

  handlerResult(h: ApplyHandler, step: { status: string; code?: number; output?: string }): void {
    const res: ResourceResult = step.status === 'changed'
      ? { id: `handler/${h.id}`, status: 'changed', reason: `ran: ${h.run}` }
      : { id: `handler/${h.id}`, status: 'failed', reason: `handler failed with exit code ${step.code}; it stays pending and runs on the next run`, output: step.output, code: step.code };
    this.handlersRun = [...this.handlersRun.filter((x) => x.id !== res.id), res];
    this.opts.onResult?.(this.host, res);
  }

  reportChanged(ran: Map<number, { decision: ChangeDecision }>): void {
    for (const [index, c] of ran) {
      const r = this.plan.resources[index]!;
      if (this.results.get(index)?.status === 'failed') continue;
      this.report(r, { id: r.id, status: 'changed', reason: c.decision.reason, diff: c.decision.diff });
    }
  }

  failDecision(r: PlannedResource, decisions: Decisions, ran: Map<number, { decision: ChangeDecision }>): HostResult {
    this.report(r, { id: r.id, status: 'failed', reason: (decisions.get(r.index) as Error).message });
    this.reportChanged(ran);
    for (const x of this.active) {
      if (!this.results.has(x.index) && isChange(decisions.get(x.index))) this.report(x, { id: x.id, status: 'skipped', reason: 'not run: an earlier resource failed' });
    }
    return this.finish();
  }

  describeKey(key: string): string {
    if (key.startsWith('H')) return 'a handler';
    return this.plan.resources[Number(key)]?.id ?? key;
  }

  finish(error?: string, extra: ResourceResult[] = []): HostResult {
    return tally({
      name: this.host,
      unreachable: 0,
      resources: [
        ...this.plan.resources.map((r) => this.results.get(r.index)).filter((x): x is ResourceResult => !!x),
        ...this.handlersRun,
        ...extra,
      ],
      error,
      roundTrips: this.session.roundTrips,
      durationMs: Date.now() - this.started,
    });
  }
}

function isChange(d: Decision | HostSkip | Error | undefined): boolean {
  return !!d && !(d instanceof Error) && d.kind === 'change';
}

/** How many of `changes` go in this pass: up to and including the first run of consecutive
 *  barrier resources that more changes follow. */
function barrierCut(changes: PlannedResource[]): number {
  const first = changes.findIndex((r) => r.type.barrier);
  if (first < 0) return changes.length;
  let end = first;
  while (end < changes.length && changes[end]!.type.barrier) end++;
  return end;
}

function decideAll(resources: PlannedResource[], probe: Pick<ProbeResult, 'facts' | 'paths'>, ctx: DecideContext): Decisions {
  const out: Decisions = new Map();
  for (const r of resources) {
    const unmet = r.hostWhen && hostConditionUnmet(r.hostWhen, probe.paths);
    if (unmet) {
      out.set(r.index, { kind: 'skip', reason: `when: ${unmet} on the host` });
      continue;
    }
    try {
      out.set(r.index, r.type.decide(r.params, probe.facts.get(r.index) ?? {}, ctx));
    } catch (err) {
      out.set(r.index, err instanceof Error ? err : new KeelError(String(err)));
    }
  }
  return out;
}

/** Why a `when: {exists/missing}` condition does not hold, or undefined when it does. */
export function hostConditionUnmet(c: HostCondition, paths: Map<string, boolean>): string | undefined {
  const absent = c.exists.find((p) => paths.get(p) !== true);
  if (absent) return `${absent} does not exist`;
  const present = c.missing.find((p) => paths.get(p) === true);
  if (present) return `${present} exists`;
  return undefined;
}

/** For each handler, the handlers that cover it (`covers:`). */
function coverers(plan: HostPlan): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of plan.handlers.values()) {
    for (const c of h.covers ?? []) out.set(c, [...(out.get(c) ?? []), h.id]);
  }
  return out;
}
