// Runs one host's plan over one connection: probe (1 round trip), decide on the controller,
// then apply + verify (1 more round trip when something must change; a further pass only for
// resources whose state was changed under them by an earlier resource).
import { KeelError } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { DecideContext, Decision } from '../resources/types.js';
import type { HostPlan, PlannedResource } from './plan.js';
import type { HostResult, ResourceResult } from './results.js';
import { tally } from './results.js';
import { buildApplyScript, buildProbeScript, newNonce, parseApply, parseProbe, type ApplyStep } from './script.js';
import { lastLines } from '../errors.js';

export interface HostRunOptions {
  check: boolean;
  diff: boolean;
  probeTimeoutMs?: number;
  applyTimeoutMs?: number;
  /** Live progress: a resource reached a final status. */
  onResult?: (host: string, result: ResourceResult) => void;
  onPhase?: (host: string, phase: string) => void;
}

const MAX_PASSES = 3;

export async function runHost(plan: HostPlan, session: HostSession, opts: HostRunOptions): Promise<HostResult> {
  const started = Date.now();
  const host = plan.host.name;
  const ctx: DecideContext = { wantDiff: opts.diff };
  const results = new Map<number, ResourceResult>();
  const report = (r: PlannedResource, res: ResourceResult) => {
    results.set(r.index, res);
    opts.onResult?.(host, res);
  };
  const active = plan.resources.filter((r) => !r.skipped);
  for (const r of plan.resources) if (r.skipped) report(r, { id: r.id, status: 'skipped', reason: r.skipped });

  const finish = (error?: string, extra: ResourceResult[] = []): HostResult =>
    tally({
      name: host,
      unreachable: 0,
      resources: [...plan.resources.map((r) => results.get(r.index)).filter((x): x is ResourceResult => !!x), ...extra],
      error,
      roundTrips: session.channelsOpened,
      durationMs: Date.now() - started,
    });

  // Phase 1: probe.
  opts.onPhase?.(host, 'probe');
  const nonce = newNonce();
  const probeOut = await session.runScript(buildProbeScript(active, nonce, ctx), { timeoutMs: opts.probeTimeoutMs ?? 300_000 });
  const probe = parseProbe(probeOut.stdout, nonce, active);
  if (probeOut.code !== 0 || !probe.complete) {
    return finish(`probe script failed (exit ${probeOut.code ?? probeOut.signal}):\n${lastLines(probeOut.stderr || probeOut.stdout, 10)}`);
  }
  let decisions = decideAll(active, probe.facts, ctx);
  const pending = probe.pendingHandlers;

  if (opts.check) {
    let earlierChange: string | undefined;
    for (const r of active) {
      const d = decisions.get(r.index)!;
      if (d instanceof Error) {
        if (earlierChange) report(r, { id: r.id, status: 'changed', uncertain: true, reason: `may change: depends on ${earlierChange} (${d.message})` });
        else report(r, { id: r.id, status: 'failed', reason: d.message });
      } else if (d.kind === 'ok') report(r, { id: r.id, status: 'ok', reason: d.reason });
      else {
        report(r, earlierChange
          ? { id: r.id, status: 'changed', reason: `may change: ${d.reason} (after ${earlierChange})`, diff: d.diff, uncertain: true }
          : { id: r.id, status: 'changed', reason: d.reason, diff: d.diff });
        earlierChange ??= r.id;
      }
    }
    const extra = pendingReport(plan, pending, 'would run: pending from an earlier run that did not finish');
    return finish(undefined, extra);
  }

  // Phase 2..n: apply what must change, verify in the same round trip. A pass stops after a
  // barrier (a package install, which creates files and units later resources look at), so
  // what follows is decided again on fresh facts. Handlers run once, in the final pass.
  const changedOnce = new Map<number, ChangeDecision>();
  let handlersRun: ResourceResult[] = [];
  let owed = new Set(pending.filter((h) => plan.handlers.has(h)));
  const forget = pending.filter((h) => !plan.handlers.has(h));
  const maxPasses = MAX_PASSES + active.filter((r) => r.type.barrier).length;
  for (let pass = 1; pass <= maxPasses; pass++) {
    const failedDecision = active.find((r) => decisions.get(r.index) instanceof Error);
    const changes = active.filter((r) => {
      const d = decisions.get(r.index);
      return d && !(d instanceof Error) && d.kind === 'change';
    });
    // A resource whose decision failed stops the run at that point, like a failed command.
    const stopAt = failedDecision ? failedDecision.index : Infinity;
    const candidates = changes.filter((r) => r.index < stopAt);
    const cut = barrierCut(candidates);
    const final = cut === candidates.length;
    const steps: ApplyStep[] = candidates
      .slice(0, cut)
      .map((r) => ({ key: String(r.index), commands: (decisions.get(r.index) as ChangeDecision).commands, notify: r.notify }));
    for (const st of steps) for (const h of st.notify) owed.add(h);
    const handlers = final ? [...plan.handlers.values()].filter((h) => owed.has(h.id)).map((h, i) => ({ key: `H${i}`, id: h.id, run: h.run })) : [];

    if (pass === 1) {
      for (const r of active) {
        const d = decisions.get(r.index)!;
        if (!(d instanceof Error) && d.kind === 'ok') report(r, { id: r.id, status: 'ok', reason: d.reason });
      }
    }
    if (!steps.length && !handlers.length && !forget.length) {
      if (failedDecision) return failDecision(failedDecision);
      break;
    }
    opts.onPhase?.(host, pass === 1 ? 'apply' : `apply (pass ${pass})`);
    const n2 = newNonce();
    const script = buildApplyScript({ nonce: n2, steps, handlers, forget: pass === 1 ? forget : [], verify: active, ctx });
    const out = await session.runScript(script, { timeoutMs: opts.applyTimeoutMs ?? 3_600_000 });
    const applied = parseApply(out.stdout, n2);
    for (const step of applied.steps) {
      if (step.key.startsWith('H')) {
        const h = handlers.find((x) => x.key === step.key)!;
        const res: ResourceResult = step.status === 'changed'
          ? { id: `handler/${h.id}`, status: 'changed', reason: `ran: ${h.run}` }
          : { id: `handler/${h.id}`, status: 'failed', reason: `handler failed with exit code ${step.code}; it stays pending and runs on the next run`, output: step.output, code: step.code };
        handlersRun = [...handlersRun.filter((x) => x.id !== res.id), res];
        opts.onResult?.(host, res);
        continue;
      }
      const r = active[active.findIndex((x) => String(x.index) === step.key)]!;
      const d = decisions.get(r.index) as ChangeDecision;
      if (step.status === 'changed') {
        changedOnce.set(r.index, d); // the latest change is the one worth reporting
      } else {
        report(r, { id: r.id, status: 'failed', reason: `command failed with exit code ${step.code}`, output: step.output, code: step.code });
      }
    }
    const failedStep = applied.steps.find((s) => s.status === 'failed' && !s.key.startsWith('H'));
    if (failedStep || out.code !== 0 || applied.verifyOutput === undefined) {
      // Everything that had to change after the failure did not run.
      for (const r of changes) {
        if (results.has(r.index) && results.get(r.index)!.status === 'failed') continue;
        if (changedOnce.has(r.index)) continue;
        report(r, { id: r.id, status: 'skipped', reason: failedStep ? 'not run: an earlier resource failed' : 'not run' });
      }
      reportChanged();
      const error = failedStep ? undefined : `apply script ended early (exit ${out.code ?? out.signal})${applied.interruptedKey ? ` during ${describeKey(applied.interruptedKey)}` : ''}:\n${lastLines(out.stderr || '(no output)', 10)}`;
      return finish(error, handlersRun);
    }
    // Handlers that ran are paid; failed ones stay pending on the host and owed here.
    if (final) owed = new Set(applied.steps.filter((st) => st.key.startsWith('H') && st.status === 'failed').map((st) => handlers.find((h) => h.key === st.key)!.id));
    // Verify: decide again on fresh facts. Resources that changed and now decide ok are done.
    const verify = parseProbe(applied.verifyOutput, n2, active);
    decisions = decideAll(active, verify.facts, ctx);
    // Commands without a guard (and restarts) always "change": they ran, that is all we know.
    for (const [index, d] of changedOnce) {
      if (d.unverifiable) decisions.set(index, { kind: 'ok', reason: 'ran' });
    }
    const again = active.filter((r) => {
      const d = decisions.get(r.index)!;
      return !(d instanceof Error) && d.kind === 'change';
    });
    if (!again.length && !active.some((r) => decisions.get(r.index) instanceof Error) && (final || owed.size === 0)) break;
    if (pass === maxPasses) {
      for (const r of again) {
        report(r, { id: r.id, status: 'failed', reason: `did not converge after ${maxPasses} passes: ${(decisions.get(r.index) as { reason: string }).reason}` });
      }
      const bad = active.find((r) => decisions.get(r.index) instanceof Error);
      if (bad) return failDecision(bad);
    }
  }
  reportChanged();
  return finish(undefined, handlersRun);

  function reportChanged() {
    for (const [index, c] of changedOnce) {
      const r = plan.resources[index]!;
      if (results.get(index)?.status === 'failed') continue;
      report(r, { id: r.id, status: 'changed', reason: c.reason, diff: c.diff });
    }
  }

  function failDecision(r: PlannedResource): HostResult {
    const err = decisions.get(r.index) as Error;
    report(r, { id: r.id, status: 'failed', reason: err.message });
    reportChanged();
    return finish(undefined, handlersRun);
  }

  function describeKey(key: string): string {
    if (key.startsWith('H')) return 'a handler';
    return plan.resources[Number(key)]?.id ?? key;
  }
}

type ChangeDecision = Extract<Decision, { kind: 'change' }>;

/** How many of `changes` go in this pass: up to and including the first run of consecutive
 *  barrier resources that more changes follow. */
function barrierCut(changes: PlannedResource[]): number {
  const first = changes.findIndex((r) => r.type.barrier);
  if (first < 0) return changes.length;
  let end = first;
  while (end < changes.length && changes[end]!.type.barrier) end++;
  return end;
}

function decideAll(resources: PlannedResource[], facts: Map<number, Record<string, string>>, ctx: DecideContext): Map<number, Decision | Error> {
  const out = new Map<number, Decision | Error>();
  for (const r of resources) {
    try {
      out.set(r.index, r.type.decide(r.params, facts.get(r.index) ?? {}, ctx));
    } catch (err) {
      out.set(r.index, err instanceof Error ? err : new KeelError(String(err)));
    }
  }
  return out;
}

function pendingReport(plan: HostPlan, pending: string[], reason: string): ResourceResult[] {
  return pending.filter((h) => plan.handlers.has(h)).map((h) => ({ id: `handler/${h}`, status: 'changed' as const, reason }));
}
