// One compiled plan shared by the hosts whose plans are identical: a fleet of web servers
// compiles the same resources and handlers on every host, and holding each host's copy was
// most of the controller's memory at 1,000 hosts (~160 KB per host for 200 resources). Plans
// are compared by their content (every field of every resource and handler), so hosts whose
// resources differ in anything (a template that names the host) keep their own. Nothing
// changes a plan's resources or handlers after compile, so sharing them is invisible.
import type { HostPlan, PlannedHandler, PlannedResource } from './plan.js';

export class PlanSharing {
  private readonly seen = new Map<string, Pick<HostPlan, 'resources' | 'handlers'>>();

  /** `plan`, with the resources and handlers of an earlier identical plan when there is one. */
  share(plan: HostPlan): HostPlan {
    const key = fingerprint(plan.resources, plan.handlers);
    const earlier = this.seen.get(key);
    if (earlier) return { ...plan, resources: earlier.resources, handlers: earlier.handlers };
    this.seen.set(key, { resources: plan.resources, handlers: plan.handlers });
    return plan;
  }
}

/** Every field of every resource (its type by name) and handler, as text that tells apart
 *  what JSON alone would not: an undefined member from a missing one, NaN and Infinity. */
export function fingerprint(resources: PlannedResource[], handlers: Map<string, PlannedHandler>): string {
  // Every member, whatever members a resource gains later (its type by name).
  const rs = resources.map((r) => Object.entries({ ...r, type: r.type.name }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify([rs, [...handlers]], exact);
}

function exact(_key: string, v: unknown): unknown {
  if (v === undefined) return '\u0000undefined';
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return `\u0000${Object.is(v, -0) ? '-0' : String(v)}`;
  if (typeof v === 'string' && v.startsWith('\u0000')) return `\u0000${v}`;
  if (typeof v === 'bigint' || typeof v === 'function' || typeof v === 'symbol') return `\u0000${typeof v}:${String(v)}`;
  if (v instanceof Map || v instanceof Set) return { '\u0000': v instanceof Map ? 'Map' : 'Set', entries: [...v] };
  return v;
}
