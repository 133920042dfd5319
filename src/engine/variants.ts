// A host's plan when its values depend on the host's facts (a role's `default_by_codename`, a
// template that reads `facts.codename`): plans are compiled before any host is reached, so the
// plan is compiled once per platform keel knows (facts.ts), identical plans merged, and the
// probe script picks the one for the facts it reads, in the same round trip (host-probe.ts).
// A host on another platform gets its plan compiled once its facts are known (one more round
// trip), or a clear error when a role has no default for its release.
//
// A plan that reads no fact is compiled once, as before: most hosts.
import { configErrorsOf, oneOrMany, type ConfigError } from '../errors.js';
import type { Host } from '../inventory/types.js';
import { DEFAULT_FACTS, compileHost, type CompileOptions } from './compile.js';
import { KNOWN_ARCHITECTURES, KNOWN_PLATFORMS, KNOWN_SERVICE_MANAGERS, machinesOf, type FactName, type HostFacts } from './facts.js';
import type { HostPlan, PlanVariant } from './plan.js';
import type { RoleLibrary } from './roles.js';

type Compiled = { facts: HostFacts; plan: HostPlan } | { facts: HostFacts; errors: ConfigError[] };

/** compileHost for a host whose facts are not known yet (see above). Throws the ConfigErrors
 *  of the first platform when no platform compiles. */
export function compileForAnyPlatform(host: Host, library: RoleLibrary, opts: CompileOptions): HostPlan {
  const read = new Set<FactName>();
  const compile = (facts: HostFacts): Compiled => {
    try {
      return { facts, plan: compileHost(host, library, { ...opts, facts, factsRead: read }) };
    } catch (err) {
      return { facts, errors: configErrorsOf(err) };
    }
  };
  const first = compile(DEFAULT_FACTS);
  if (!read.size) {
    if ('errors' in first) throw oneOrMany(first.errors);
    return first.plan;
  }
  // Each fact read is a dimension; compiling for more platforms may read more facts.
  const done = new Map<string, Compiled>([[keyOf(DEFAULT_FACTS, read), first]]);
  for (let size = 0; size !== read.size; ) {
    size = read.size;
    for (const facts of candidates(read)) {
      const key = keyOf(facts, read);
      if (!done.has(key)) done.set(key, compile(facts));
    }
  }
  const ok = [...done.values()].filter((c): c is Extract<Compiled, { plan: HostPlan }> => 'plan' in c);
  if (!ok.length) throw oneOrMany((first as Extract<Compiled, { errors: ConfigError[] }>).errors ?? []);
  const variants = merge(ok, read);
  return {
    ...variants[0]!.plan,
    byFacts: { variants, compile: (facts) => compileHost(host, library, { ...opts, facts }) },
  };
}

/** Every known platform, architecture and service manager the read facts tell apart. */
function candidates(read: Set<FactName>): HostFacts[] {
  const platforms = read.has('distribution') || read.has('release') || read.has('codename') ? KNOWN_PLATFORMS : [DEFAULT_FACTS];
  const archs = read.has('architecture') ? KNOWN_ARCHITECTURES : [DEFAULT_FACTS.architecture];
  const managers = read.has('service_manager') ? KNOWN_SERVICE_MANAGERS : [DEFAULT_FACTS.service_manager];
  return platforms.flatMap((p) => archs.flatMap((architecture) => managers.map((service_manager) => ({ ...p, architecture, service_manager }) as HostFacts)));
}

function keyOf(f: HostFacts, read: Set<FactName>): string {
  return patternsOf(f, read).join('|');
}

/** The `case` patterns over $keel_platform (facts.ts) that select a plan compiled for `f`:
 *  a fact the plan did not read matches anything. */
function patternsOf(f: HostFacts, read: Set<FactName>): string[] {
  const platform = read.has('distribution') || read.has('release') || read.has('codename') ? `${f.distribution}/${f.release}/${f.codename}` : '*/*/*';
  const machines = read.has('architecture') ? machinesOf(f.architecture) : ['*'];
  const manager = read.has('service_manager') ? f.service_manager : '*';
  return machines.map((m) => `${platform}/${m}/${manager}`);
}

/** Platforms whose plans are the same share one variant (one `case` branch). */
function merge(compiled: { facts: HostFacts; plan: HostPlan }[], read: Set<FactName>): PlanVariant[] {
  const byShape = new Map<string, PlanVariant>();
  for (const c of compiled) {
    const shape = shapeOf(c.plan);
    const v = byShape.get(shape);
    if (v) {
      v.patterns.push(...patternsOf(c.facts, read));
      v.platforms.push(c.facts);
    } else byShape.set(shape, { patterns: patternsOf(c.facts, read), platforms: [c.facts], plan: c.plan });
  }
  return [...byShape.values()];
}

/** The variables whose value differs by release, as `{by_release: {bookworm: 15, trixie: 17}}`
 *  (keel inventory shows them so: which one a host gets is read from it). */
export function byRelease(plan: HostPlan): Record<string, { by_release: Record<string, unknown> }> {
  const variants = plan.byFacts?.variants ?? [];
  const out: Record<string, { by_release: Record<string, unknown> }> = {};
  const names = new Set(variants.flatMap((v) => Object.keys(v.plan.vars)));
  for (const name of names) {
    if (name === 'facts') continue;
    const values = variants.map((v) => JSON.stringify(v.plan.vars[name]));
    if (new Set(values).size < 2) continue;
    const table: Record<string, unknown> = {};
    for (const v of variants) for (const f of v.platforms) table[f.codename] = v.plan.vars[name];
    out[name] = { by_release: table };
  }
  return out;
}

/** What a plan does on a host: its resources and handlers (the facts themselves aside). */
function shapeOf(plan: HostPlan): string {
  return JSON.stringify([
    plan.resources.map((r) => [r.id, r.params, r.notify, r.skipped ?? null, r.hostWhen ?? null, r.covers ?? null, r.flushHandlers ?? null]),
    [...plan.handlers.values()],
  ]);
}
