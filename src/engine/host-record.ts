// What one host's run has reported so far, and how it ends: every status goes out live (the
// progress display, the run log) as it is reported, and finish() makes the HostResult.
import type { HostSession } from '../ssh/types.js';
import { isChange, type ChangeDecision, type Decisions } from './decide.js';
import type { HostPlan, PlannedResource } from './plan.js';
import { tally, type HostResult, type ResourceResult } from './results.js';
import type { ApplyHandler } from './script.js';

/** Resources whose commands ran in this run, by index: reported changed at the end. */
export type Ran = Map<number, { decision: ChangeDecision; times: number }>;

export class HostRecord {
  readonly host: string;
  /** The resources a `when:` did not skip: the ones probed and decided. */
  readonly active: PlannedResource[];
  private readonly results = new Map<number, ResourceResult>();
  private handlersRun: ResourceResult[] = [];

  constructor(
    private readonly plan: HostPlan,
    private readonly session: HostSession,
    private readonly onResult: ((host: string, result: ResourceResult) => void) | undefined,
    private readonly started: number,
  ) {
    this.host = plan.host.name;
    this.active = plan.resources.filter((r) => !r.skipped);
    for (const r of plan.resources) if (r.skipped) this.report(r, { id: r.id, status: 'skipped', reason: r.skipped });
  }

  report(r: PlannedResource, res: ResourceResult): void {
    this.results.set(r.index, res);
    this.onResult?.(this.host, res);
  }

  status(r: PlannedResource): string | undefined {
    return this.results.get(r.index)?.status;
  }

  handlerResult(h: ApplyHandler, step: { status: string; code?: number; output?: string }): void {
    const res: ResourceResult =
      step.status === 'changed'
        ? { id: `handler/${h.id}`, status: 'changed', reason: `ran: ${h.run}` }
        : {
            id: `handler/${h.id}`,
            status: 'failed',
            reason: `handler failed with exit code ${step.code}; it stays pending and runs on the next run`,
            output: step.output,
            code: step.code,
          };
    this.handlersRun = [...this.handlersRun.filter((x) => x.id !== res.id), res];
    this.onResult?.(this.host, res);
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
