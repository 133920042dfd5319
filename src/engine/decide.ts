// Deciding on the controller: every resource's decision from the facts a probe (or the
// verification at the end of an apply script) brought back. Pure: no connection, no reporting.
import { KeelError } from '../errors.js';
import { NO_FACTS, type DecideContext, type Decision, type Facts } from '../resources/types.js';
import type { HostCondition, PlannedResource } from './plan.js';
import type { ProbeResult } from './script.js';

export type ChangeDecision = Extract<Decision, { kind: 'change' }>;

/** A `when: {exists/missing}` condition false on the host: nothing to decide, reported skipped. */
export interface HostSkip {
  kind: 'skip';
  reason: string;
}

/** By resource index. A decide() that threw is kept as its error: the run stops at that resource. */
export type Decisions = Map<number, Decision | HostSkip | Error>;

/** The last decision of each resource, with the facts it was made on. decide() is pure and its
 *  facts are never changed, so the same facts object (hosts whose probe printed the same
 *  section share its parse: script.ts parseSection) gets the same decision, made once. */
const decided = new WeakMap<PlannedResource, { facts: Facts; wantDiff: boolean; decision: Decision }>();

export function decideAll(resources: PlannedResource[], probe: Pick<ProbeResult, 'facts' | 'paths'>, ctx: DecideContext): Decisions {
  const out: Decisions = new Map();
  for (const r of resources) {
    const unmet = r.hostWhen && hostConditionUnmet(r.hostWhen, probe.paths);
    if (unmet) {
      out.set(r.index, { kind: 'skip', reason: `when: ${unmet} on the host` });
      continue;
    }
    const facts = probe.facts.get(r.index) ?? NO_FACTS;
    const known = decided.get(r);
    if (known && known.facts === facts && known.wantDiff === ctx.wantDiff) {
      out.set(r.index, known.decision);
      continue;
    }
    try {
      const decision = r.type.decide(r.params, facts, ctx);
      decided.set(r, { facts, wantDiff: ctx.wantDiff, decision });
      out.set(r.index, decision);
    } catch (err) {
      out.set(r.index, err instanceof Error ? err : new KeelError(String(err)));
    }
  }
  return out;
}

export function isChange(d: Decision | HostSkip | Error | undefined): d is ChangeDecision {
  return !!d && !(d instanceof Error) && d.kind === 'change';
}

/** Why a `when: {exists/missing}` condition does not hold, or undefined when it does. */
export function hostConditionUnmet(c: HostCondition, paths: Map<string, boolean>): string | undefined {
  const absent = c.exists.find((p) => paths.get(p) !== true);
  if (absent) return `${absent} does not exist`;
  const present = c.missing.find((p) => paths.get(p) === true);
  if (present) return `${present} exists`;
  return undefined;
}
