// One compiled plan shared by the hosts whose plans are identical: a fleet of web servers
// compiles the same resources and handlers on every host, and holding each host's copy was
// most of the controller's memory at 1,000 hosts (~160 KB per host for 200 resources). Plans
// are compared by their content (every field of every resource and handler), so hosts whose
// resources differ in anything (a template that names the host) keep their own. Nothing
// changes a plan's resources or handlers after compile, so sharing them is invisible.
//
// Finding the earlier plan: plain JSON of the plan (V8's fast path: no replacer) picks the
// candidates, and `same` confirms one member by member, telling apart what JSON does not (an
// undefined member from a missing one, NaN, -0, a Map). A JSON replacer that did both in one
// pass cost 4 ms per host for 400 resources, the most expensive part of a no-op's compile.
import type { HostPlan, PlannedHandler, PlannedResource } from './plan.js';
import { same } from './same.js';

/** Runs with fewer hosts do not share plans (see prepareRun). */
export const SHARE_FROM_HOSTS = 50;

type Shared = Pick<HostPlan, 'resources' | 'handlers'>;

export class PlanSharing {
  private readonly seen = new Map<string, Shared[]>();
  /** Resources already kept or given out, with their handlers: a host whose compile reused
   *  another's section (compile-reuse.ts) holds them already, and needs no comparison. */
  private readonly given = new WeakMap<PlannedResource[], Map<string, PlannedHandler>>();

  /** `plan`, with the resources and handlers of an earlier identical plan when there is one. */
  share(plan: HostPlan): HostPlan {
    if (this.given.get(plan.resources) === plan.handlers) return plan;
    const shared = this.find(plan);
    this.given.set(shared.resources, shared.handlers);
    return shared;
  }

  private find(plan: HostPlan): HostPlan {
    const key = candidateKey(plan.resources, plan.handlers);
    if (key === null) return plan;
    const candidates = this.seen.get(key);
    const earlier = candidates?.find((c) => same(c.resources, plan.resources) && same(c.handlers, plan.handlers));
    if (earlier) return { ...plan, resources: earlier.resources, handlers: earlier.handlers };
    const own = { resources: plan.resources, handlers: plan.handlers };
    if (candidates) candidates.push(own);
    else this.seen.set(key, [own]);
    return plan;
  }
}

/** Equal for identical plans (member order aside); plans with the same key may still differ.
 *  Null for a plan JSON cannot write (a BigInt): it keeps its own. */
function candidateKey(resources: PlannedResource[], handlers: Map<string, PlannedHandler>): string | null {
  try {
    return JSON.stringify([resources.map((r) => ({ ...r, type: r.type.name })), [...handlers]]);
  } catch {
    return null;
  }
}
