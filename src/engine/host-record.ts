// What one host's run has reported so far, and how it ends: every status goes out live (the
// progress display, the run log) as it is reported, and finish() makes the HostResult.
//
// A step that ended is shown at once (show()): a resource whose commands ran is `changed`
// before the probe after the steps verifies it, which may still make it `failed`. Its
// result is report()ed when known; the same status and reason is not shown twice for one run
// of a step (a step that runs again, in a later pass, is shown again).
import type { HostSession } from '../ssh/types.js';
import { isChange, type ChangeDecision, type Decisions } from './decide.js';
import type { HostPlan, PlannedResource } from './plan.js';
import { tally, type HostResult, type ResourceResult } from './results.js';
import { activeResources, type ApplyHandler } from './script.js';

/** Resources whose commands ran in this run, by index: reported changed at the end. */
export type Ran = Map<number, { decision: ChangeDecision; times: number }>;

export class HostRecord {
  readonly host: string;
  /** The resources a `when:` did not skip: the ones probed and decided. */
  readonly active: PlannedResource[];
  private readonly results = new Map<number, ResourceResult>();
  private handlersRun: ResourceResult[] = [];
  /** The result last shown, by id. */
  private readonly shown = new Map<string, ResourceResult>();
  /** Resources (by index) shown with a status so far. */
  private readonly done = new Set<number>();

  constructor(
    private readonly plan: HostPlan,
    private readonly session: HostSession,
    private readonly onResult: ((host: string, result: ResourceResult) => void) | undefined,
    private readonly started: number,
  ) {
    this.host = plan.host.name;
    this.active = activeResources(plan.resources);
    for (const r of plan.resources) if (r.skipped) this.report(r, { id: r.id, status: 'skipped', reason: r.skipped });
  }

  report(r: PlannedResource, res: ResourceResult): void {
    this.results.set(r.index, res);
    this.show(r, res);
  }

  /** Show `res` live (a step just ended) without making it the result yet. */
  show(r: PlannedResource | undefined, res: ResourceResult): void {
    if (r) this.done.add(r.index);
    const said = this.shown.get(res.id);
    if (said && said.status === res.status && said.reason === res.reason) return;
    this.shown.set(res.id, res);
    this.onResult?.(this.host, res);
  }

  /** A step of `id` begins: what it ends in is shown, even if it was before. */
  running(id: string): void {
    this.shown.delete(id);
  }

  /** Resources shown with a status so far, of all the host's. */
  counts(): { done: number; total: number } {
    return { done: this.done.size, total: this.plan.resources.length };
  }

  status(r: PlannedResource): string | undefined {
    return this.results.get(r.index)?.status;
  }

  handlerResult(h: ApplyHandler, step: HandlerStep): void {
    const res = handlerOutcome(h, step);
    this.handlersRun = [...this.handlersRun.filter((x) => x.id !== res.id), res];
    this.show(undefined, res);
  }

  reportChanged(ran: Ran): void {
    for (const [index, c] of ran) {
      const r = this.plan.resources[index]!;
      if (this.results.get(index)?.status === 'failed') continue;
      this.report(r, { id: r.id, status: 'changed', reason: c.decision.reason, diff: c.decision.diff });
    }
  }

  /** `r`'s decision failed: it fails, what ran is changed, what was still to change is not run. */
  failDecision(r: PlannedResource, decisions: Decisions, ran: Ran): HostResult {
    this.report(r, { id: r.id, status: 'failed', reason: (decisions.get(r.index) as Error).message });
    this.reportChanged(ran);
    for (const x of this.active) {
      if (!this.results.has(x.index) && isChange(decisions.get(x.index)))
        this.report(x, { id: x.id, status: 'skipped', reason: 'not run: an earlier resource failed' });
    }
    return this.finish();
  }

  /** A step key of an apply script, for a person. */
  describeKey(key: string): string {
    if (key.startsWith('H')) return 'a handler';
    return this.plan.resources[Number(key)]?.id ?? key;
  }

  finish(error?: string, extra: ResourceResult[] = []): HostResult {
    return tally({
      name: this.host,
      unreachable: 0,
      resources: [...this.plan.resources.map((r) => this.results.get(r.index)).filter((x): x is ResourceResult => !!x), ...this.handlersRun, ...extra],
      error,
      roundTrips: this.session.roundTrips,
      durationMs: Date.now() - this.started,
    });
  }
}

type HandlerStep = { status: string; code?: number; output?: string };

/** What a handler's step ended in, as a result. */
export function handlerOutcome(h: ApplyHandler, step: HandlerStep): ResourceResult {
  return step.status === 'changed'
    ? { id: `handler/${h.id}`, status: 'changed', reason: `ran: ${h.run}` }
    : {
        id: `handler/${h.id}`,
        status: 'failed',
        reason: `handler failed with exit code ${step.code}; it stays pending and runs on the next run`,
        output: step.output,
        code: step.code,
      };
}
