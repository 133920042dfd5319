// Apply on one host, after its probe. Each pass is one round trip: a script runs the commands
// of what must change, then probes again, so the controller verifies without another trip. A
// pass stops after a barrier (a package install, which creates files and units later resources
// look at), so what follows is decided again on fresh facts. Handlers run once, in the final pass.
//
// The script's status lines are read as they arrive: each step is shown running, then with
// its result, while the script goes on (the host's result is still made from the whole output).
//
// A resource's commands run at most once per run. A `command` that ran and whose guard is still
// unmet fails ("ran, but /x still does not exist") instead of running again; a declarative
// resource (a file, a directory...) that still differs after it ran may be applied once more
// (a package installed after it may have rewritten it), then fails.
import { KeelError, lastLines } from '../errors.js';
import type { ExecResult, HostSession } from '../ssh/types.js';
import type { DecideContext } from '../resources/types.js';
import { decideAll, isChange, type ChangeDecision, type Decisions } from './decide.js';
import { HandlerLedger } from './handler-ledger.js';
import type { HostRunOptions, Probed } from './host-probe.js';
import { HostRecord, handlerOutcome, type Ran } from './host-record.js';
import { assertHeldSnippet } from './lock.js';
import type { HostPlan, PlannedResource } from './plan.js';
import { okResult, type HostResult, type ResourceResult } from './results.js';
import { buildApplyScript, handlerStep, parseApply, parseProbe, type ApplyHandler, type ApplyResult } from './script.js';
import { newNonce } from './script-parts.js';
import { describeFacts, type HostFacts } from './facts.js';
import { StepLines, type Step, type StepEvent, type StepOutcome } from './steps.js';
import { timed } from '../timing.js';

/**
 * Apply what must change and verify it, pass by pass, until every resource converged.
 * `runId`: the run holds the host's lock; every apply script checks it still does before it
 * changes anything.
 */
export function applyHost(plan: HostPlan, session: HostSession, probed: Probed, opts: HostRunOptions, runId?: string): Promise<HostResult> {
  return new HostApply(plan, session, probed, opts, runId).run();
}

/** What one pass sends, and what it was planned from. */
interface Pass {
  number: number;
  /** No barrier cut it short: the handlers still due run at its end. */
  final: boolean;
  /** The resources' steps, with the handlers a `flush_handlers` runs among them. */
  steps: Step[];
  /** The handlers of the final pass, after every step. */
  handlers: ApplyHandler[];
  /** Every resource that decided to change, sent in this pass or not. */
  changes: PlannedResource[];
  /** The first resource whose decision failed: nothing from it on is sent. */
  failedDecision?: PlannedResource;
}

class HostApply {
  private readonly record: HostRecord;
  private readonly handlers: HandlerLedger;
  private readonly ctx: DecideContext;
  private readonly maxPasses: number;
  private readonly ran: Ran = new Map();
  private decisions: Decisions;
  private readonly facts: HostFacts | undefined;

  constructor(
    private readonly plan: HostPlan,
    private readonly session: HostSession,
    probed: Probed,
    private readonly opts: HostRunOptions,
    private readonly runId?: string,
  ) {
    this.record = new HostRecord(plan, session, opts.onResult, probed.startedAt);
    this.handlers = new HandlerLedger(plan.handlers, probed.probe.pendingHandlers);
    this.ctx = { wantDiff: opts.diff };
    this.maxPasses = 3 + this.record.active.filter((r) => r.type.barrier).length;
    this.decisions = timed('decide', () => decideAll(this.record.active, probed.probe, this.ctx));
    this.facts = probed.facts;
  }

  async run(): Promise<HostResult> {
    const { record } = this;
    this.reportSettled();
    for (let n = 1; n <= this.maxPasses; n++) {
      const pass = this.planPass(n);
      if (!pass.steps.length && !pass.handlers.length && !(n === 1 && this.handlers.forget.length)) {
        if (pass.failedDecision) return record.failDecision(pass.failedDecision, this.decisions, this.ran);
        break;
      }
      const { out, applied, nonce } = await this.send(pass);
      this.recordSteps(applied);
      const failedStep = applied.steps.find((s) => s.status === 'failed' && !s.key.startsWith('H'));
      if (failedStep || out.code !== 0 || applied.verifyOutput === undefined) return this.endEarly(pass, out, applied, !!failedStep);
      // Handlers that ran are paid; failed ones stay pending on the host and owed here.
      if (pass.final) this.handlers.settle();
      this.verify(applied.verifyOutput, nonce);
      const again = record.active.filter((r) => isChange(this.decisions.get(r.index)));
      const broken = record.active.find((r) => this.decisions.get(r.index) instanceof Error);
      if (broken && !again.some((r) => r.index < broken.index)) return record.failDecision(broken, this.decisions, this.ran);
      if (!again.length && !broken && (pass.final || this.handlers.nothingOwed)) break;
      if (n === this.maxPasses) this.reportUnconverged(again);
    }
    record.reportChanged(this.ran);
    return record.finish();
  }

  /** What the probe found converged, or skipped by a `when:` on the host, is reported at once. */
  private reportSettled(): void {
    for (const r of this.record.active) {
      const d = this.decisions.get(r.index)!;
      if (!(d instanceof Error) && d.kind === 'ok') this.record.report(r, okResult(r.id, d));
      if (!(d instanceof Error) && d.kind === 'skip') this.record.report(r, { id: r.id, status: 'skipped', reason: d.reason });
    }
  }

  /** The changes up to and including the first barriers; when none cut the pass short, the
   *  handlers still due after them. */
  private planPass(number: number): Pass {
    const { active } = this.record;
    const failedDecision = active.find((r) => this.decisions.get(r.index) instanceof Error);
    const changes = active.filter((r) => isChange(this.decisions.get(r.index)));
    // A resource whose decision failed stops the run at that point, like a failed command.
    const candidates = changes.filter((r) => r.index < (failedDecision?.index ?? Infinity));
    const cut = barrierCut(candidates);
    const final = cut === candidates.length;
    this.handlers.newPass();
    const steps: Step[] = [];
    for (const r of candidates.slice(0, cut)) {
      // flush_handlers: what is due so far runs first (nginx must serve the site just
      // written before certbot asks the ACME server to fetch from it).
      if (r.flushHandlers) steps.push(...this.handlers.takeDue(r.flushHandlers).map(handlerStep));
      const d = this.decisions.get(r.index) as ChangeDecision;
      steps.push({ key: String(r.index), commands: d.commands, notify: r.notify, ...(r.covers && { forget: r.covers }) });
      this.handlers.notify(r.notify);
    }
    return { number, final, steps, handlers: final ? this.handlers.takeDue() : [], changes, failedDecision };
  }

  /** One round trip: the pass's steps and handlers, then every probe again. */
  private async send(pass: Pass): Promise<{ out: ExecResult; applied: ApplyResult; nonce: string }> {
    this.opts.onPhase?.(this.record.host, pass.number === 1 ? 'apply' : `apply (pass ${pass.number})`);
    const nonce = newNonce();
    const script = buildApplyScript({
      nonce,
      steps: pass.steps,
      handlers: pass.handlers,
      forget: pass.number === 1 ? this.handlers.forget : [],
      verify: this.record.active,
      ctx: this.ctx,
      prefix: this.runId ? assertHeldSnippet(this.runId) : undefined,
      streamOutput: this.opts.streamOutput,
    });
    const live = new StepLines(nonce);
    const out = await this.session.runScript(script, {
      timeoutMs: this.opts.applyTimeoutMs ?? 3_600_000,
      onStdoutLine: (line) => this.live(live.read(line)),
    });
    return { out, applied: parseApply(out.stdout, nonce), nonce };
  }

  /** A status line arrived: show the step running, its output, or how it ended. */
  private live(e: StepEvent | undefined): void {
    if (!e) return;
    const { record } = this;
    const key = e.type === 'end' ? e.step.key : e.key;
    const id = key.startsWith('H') ? `handler/${this.handlers.byKey(key).id}` : this.plan.resources[Number(key)]!.id;
    if (e.type === 'output') return this.opts.onStep?.(record.host, { state: 'output', id, line: e.line });
    if (e.type === 'begin') {
      record.running(id);
      return this.opts.onStep?.(record.host, { state: 'running', id, ...record.counts() });
    }
    // Shown only: the host's results are made from the whole output once the script ended.
    if (key.startsWith('H')) record.show(undefined, handlerOutcome(this.handlers.byKey(key), e.step));
    else {
      const r = this.plan.resources[Number(key)]!;
      record.show(r, e.step.status === 'failed' ? failedResult(r, e.step, this.facts) : changedResult(r.id, this.decisions.get(r.index) as ChangeDecision));
    }
    this.opts.onStep?.(record.host, { state: 'ended', id, ...record.counts() });
  }

  /** Each step's outcome: a handler's goes to the ledger and the record; a resource's to `ran`,
   *  or the record when it failed. */
  private recordSteps(applied: ApplyResult): void {
    for (const step of applied.steps) {
      if (step.key.startsWith('H')) {
        const h = this.handlers.byKey(step.key);
        this.record.handlerResult(h, step);
        if (step.status === 'failed') this.handlers.ranFailed(h);
        continue;
      }
      const r = this.plan.resources[Number(step.key)]!;
      const d = this.decisions.get(r.index) as ChangeDecision;
      if (step.status === 'changed') this.ran.set(r.index, { decision: d, times: (this.ran.get(r.index)?.times ?? 0) + 1 });
      else this.record.report(r, failedResult(r, step, this.facts));
    }
  }

  /** The script stopped before its verification: a step failed, or the script itself ended
   *  (the connection, the lock check). The host's run ends here. */
  private endEarly(pass: Pass, out: ExecResult, applied: ApplyResult, stepFailed: boolean): HostResult {
    for (const r of pass.changes) {
      if (this.record.status(r) === 'failed' || this.ran.has(r.index)) continue;
      this.record.report(r, { id: r.id, status: 'skipped', reason: stepFailed ? 'not run: an earlier resource failed' : 'not run' });
    }
    this.record.reportChanged(this.ran);
    if (stepFailed) return this.record.finish();
    const during = applied.interruptedKey ? ` during ${this.record.describeKey(applied.interruptedKey)}` : '';
    return this.record.finish(`apply script ended early (exit ${out.code ?? out.signal})${during}:\n${lastLines(out.stderr || '(no output)', 10)}`);
  }

  /** Decide again on the facts probed after the steps. Resources that changed and now decide
   *  ok are done. */
  private verify(output: string, nonce: string): void {
    const { active } = this.record;
    const verify = parseProbe(output, nonce, active);
    this.decisions = decideAll(active, verify, this.ctx);
    for (const [index, r] of this.ran) {
      // Commands without a guard (and restarts) always "change": they ran, that is all we know.
      if (r.decision.unverifiable) this.decisions.set(index, { kind: 'ok', reason: 'ran' });
    }
    // At most once: what ran and still differs fails now rather than running again.
    for (const r of active) {
      const d = this.decisions.get(r.index);
      const done = this.ran.get(r.index);
      if (!done || !isChange(d)) continue;
      if (r.type.runsOnce || done.times >= 2) {
        const still = r.type.unmet?.(r.params, verify.facts.get(r.index) ?? {}) ?? d.reason;
        this.decisions.set(r.index, new KeelError(`ran, but ${still}`));
        this.ran.delete(r.index);
      }
    }
  }

  private reportUnconverged(again: PlannedResource[]): void {
    for (const r of again) {
      const d = this.decisions.get(r.index) as ChangeDecision;
      this.record.report(r, { id: r.id, status: 'failed', reason: `did not converge after ${this.maxPasses} passes: ${d.reason}` });
    }
  }
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

function failedResult(r: PlannedResource, step: StepOutcome, facts: HostFacts | undefined): ResourceResult {
  const base = `command failed with exit code ${step.code}`;
  return { id: r.id, status: 'failed', reason: explained(r, step, facts) ?? base, output: step.output, code: step.code };
}

/** "command failed with exit code 100: apt has no postgresql-15 for this host (Debian 13
 *  (trixie), amd64): its name comes from postgres_version = 15 (the default for bookworm...)" */
function explained(r: PlannedResource, step: StepOutcome, facts: HostFacts | undefined): string | undefined {
  const why = r.type.explainFailure?.(r.params, step.output ?? '');
  if (!why) return undefined;
  const host = facts ? why.replace('this host', `this host, ${describeFacts(facts)}`) : why;
  const from = (r.origins ?? []).map((o) => `${o.name} = ${JSON.stringify(o.value)} (${o.from})`);
  const names = (r.origins ?? []).map((o) => o.name);
  const hint = names.length ? `; it comes from ${from.join(', ')}: set ${names.join(' or ')} to what this release has` : '';
  return `command failed with exit code ${step.code}: ${host}${hint}`;
}

/** A resource whose commands ran, before its verification. */
function changedResult(id: string, d: ChangeDecision): ResourceResult {
  return { id, status: 'changed', reason: d.reason, ...(d.diff && { diff: d.diff }) };
}
