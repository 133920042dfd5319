// Compiles a host's plan into the two scripts that travel to it, and parses what comes back.
//
//  probe script: every resource type's probe, one section per type, plus the handlers still
//                pending from an earlier run. A no-op run is this one round trip.
//  apply script: the commands of each resource that must change, in order, each in a `set -e`
//                subshell with its output captured; stops at the first failure; then the
//                notified handlers; then the probe again, so the controller can verify that
//                every resource converged without another round trip.
//
// The whole script is one shell function, called on the last line: sh parses a function
// completely before running it, so a script cut short in transit runs nothing at all.
// Protocol lines start with a per-run nonce, so command output can't fake them.
import { raw, sh } from '../shell/quote.js';
import type { DecideContext, Facts, ProbeItem, ResourceType } from '../resources/types.js';
import { NO_FACTS, parseFacts } from '../resources/types.js';
import type { PlannedResource } from './plan.js';
import { stepsBody, parseSteps, type ParsedSteps, type Step } from './steps.js';
import { PRELUDE, RUN_DIR, wrap, wrapGathered } from './script-parts.js';
import { factsSnippet } from './facts.js';
import type { PlanVariant } from './plan.js';

/** The probe part, shared by the probe script and the verification at the end of apply. */
function probeBody(resources: PlannedResource[], nonce: string, ctx: DecideContext): string {
  const { starts, probes } = probeParts(resources, ctx);
  let s = starts;
  for (const { type, text } of probes) {
    s += `printf '\\n%s S %s\\n' ${sh`${nonce} ${type.name}`}\n`;
    s += text;
  }
  s += hostPathsProbe(resources, nonce);
  s += `printf '\\n%s P\\n' ${sh`${nonce}`}\nif [ -s "$KEEL_STATE/pending-handlers" ]; then cat -- "$KEEL_STATE/pending-handlers" 2>/dev/null; fi\n`;
  s += `printf '\\n%s E\\n' ${sh`${nonce}`}\n`;
  return s;
}

/** The resources a `when:` did not skip: one list per plan's resources, so hosts sharing a
 *  compiled section share it, and the probe's texts made for it (probeParts). */
export function activeResources(resources: PlannedResource[]): PlannedResource[] {
  let list = activeCache.get(resources);
  if (!list) activeCache.set(resources, (list = resources.filter((r) => !r.skipped)));
  return list;
}

const activeCache = new WeakMap<PlannedResource[], PlannedResource[]>();

interface ProbeParts {
  /** Every type's probeStart. */
  starts: string;
  probes: { type: ResourceType<unknown>; text: string }[];
}

/** The types' probe texts (which hold no nonce) for a resource list, made once per list and
 *  --diff: hosts that share a compiled section (compile-reuse.ts) probe the same list. */
function probeParts(resources: PlannedResource[], ctx: DecideContext): ProbeParts {
  const known = partsCache.get(resources)?.get(ctx.wantDiff);
  if (known) return known;
  const byType = [...itemsByType(resources)];
  let starts = '';
  for (const [type, { items }] of byType) if (type.probeStart) starts += type.probeStart(items, ctx) + '\n';
  const parts = { starts, probes: byType.map(([type, { items }]) => ({ type, text: type.probe(items, ctx) + '\n' })) };
  const byDiff = partsCache.get(resources) ?? new Map<boolean, ProbeParts>();
  byDiff.set(ctx.wantDiff, parts);
  partsCache.set(resources, byDiff);
  return parts;
}

const partsCache = new WeakMap<PlannedResource[], Map<boolean, ProbeParts>>();

/** The paths `when: {exists/missing}` conditions look at: one `[ -e ]` each, a builtin. */
function hostPathsProbe(resources: PlannedResource[], nonce: string): string {
  const paths = [...new Set(resources.flatMap((r) => (r.hostWhen ? [...r.hostWhen.exists, ...r.hostWhen.missing] : [])))];
  if (!paths.length) return '';
  return (
    `printf '\\n%s W\\n' ${sh`${nonce}`}\n` +
    sh`for keel_p in ${paths}; do if [ -e "$keel_p" ]; then printf '1\\t%s\\n' "$keel_p"; else printf '0\\t%s\\n' "$keel_p"; fi; done\n`
  );
}

/** `prefix` runs first (the lock: taken with the probe, in the same round trip); then the
 *  host's facts are read (facts.ts), then every resource is probed. */
export function buildProbeScript(resources: PlannedResource[], nonce: string, ctx: DecideContext, prefix = ''): string {
  return wrapGathered(PRELUDE + prefix + factsSnippet(nonce) + probeBody(resources, nonce, ctx));
}

/** The probe of a plan that depends on the host's facts: the facts are read first, then the
 *  variant for them probes (`<nonce> X <index>` says which). Facts no variant covers end the
 *  script after the facts line: the controller compiles a plan for them. */
export function buildVariantProbeScript(variants: PlanVariant[], nonce: string, ctx: DecideContext, prefix = ''): string {
  let s = PRELUDE + prefix + factsSnippet(nonce) + 'case $keel_platform in\n';
  variants.forEach((v, i) => {
    s += `${v.patterns.join(' | ')})\nprintf '%s X %s\\n' ${sh`${nonce} ${String(i)}`}\n${probeBody(activeResources(v.plan.resources), nonce, ctx)};;\n`;
  });
  return wrapGathered(s + '*) ;;\nesac\n');
}

/** Which variant's probe ran (buildVariantProbeScript), if any. */
export function parseVariant(output: string, nonce: string): number | undefined {
  const m = new RegExp(`^${nonce} X (\\d+)$`, 'm').exec(output);
  return m ? Number(m[1]) : undefined;
}

export interface ApplyHandler {
  key: string;
  id: string;
  run: string;
  /** Handler ids it covers: forgotten when it ran. */
  covers?: string[];
  /** Handler ids that cover it: while one is due, this one does not run. */
  coveredBy?: string[];
}

/** A handler as a step: runs only while due on the host (see steps.ts). */
export function handlerStep(h: ApplyHandler): Step {
  return {
    // The role author's shell, rendered (compile refuses a bare {{var}} in it).
    key: h.key,
    commands: [raw(h.run)],
    handler: h.id,
    ...(h.covers?.length && { forget: h.covers }),
    ...(h.coveredBy?.length && { unlessPending: h.coveredBy }),
  };
}

export function buildApplyScript(opts: {
  nonce: string;
  /** Resource steps, with the handler steps of `flush_handlers` among them. */
  steps: Step[];
  /** The handlers of the final pass, after every step. */
  handlers: ApplyHandler[];
  /** Handler ids pending from earlier runs that no longer exist: forget them. */
  forget: string[];
  verify: PlannedResource[];
  ctx: DecideContext;
  /** Shell run first (the lock check). */
  prefix?: string;
  /** Send each step's output lines as they are written. */
  streamOutput?: boolean;
}): string {
  let s = PRELUDE + (opts.prefix ?? '') + RUN_DIR;
  // Once started, finish: a dropped connection must not stop the run between two steps.
  s += `trap '' HUP PIPE
mkdir -p -- "$KEEL_STATE" && chmod 700 -- "$KEEL_STATE" || exit 98
`;
  const handlerSteps: Step[] = opts.handlers.map(handlerStep);
  s += stepsBody(opts.nonce, [...opts.steps, ...handlerSteps], { streamOutput: opts.streamOutput });
  // keel_forget is defined by stepsBody's helpers; forgetting comes after, harmless either way.
  for (const id of opts.forget) s += sh`keel_forget ${id}\n`;
  s += `printf '\\n%s V\\n' ${sh`${opts.nonce}`}\n`;
  s += probeBody(opts.verify, opts.nonce, opts.ctx);
  return wrap(s);
}

export interface ProbeResult {
  facts: Map<number, Facts>;
  /** Whether each path of a `when: {exists/missing}` condition exists on the host. */
  paths: Map<string, boolean>;
  pendingHandlers: string[];
  complete: boolean;
}

/** Parse the probe sections of `output` (the part after `@@nonce V` for an apply). */
export function parseProbe(output: string, nonce: string, resources: PlannedResource[]): ProbeResult {
  const facts = new Map<number, Facts>();
  const sections = splitSections(output, nonce);
  for (const [type, { resources: items, items: probeItems }] of itemsByType(resources)) {
    const parsed = parseSection(type, sections.get(`S ${type.name}`) ?? '', probeItems);
    for (const r of items) facts.set(r.index, parsed.get(String(r.index)) ?? NO_FACTS);
  }
  const pending = (sections.get('P') ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const paths = new Map<string, boolean>();
  for (const line of (sections.get('W') ?? '').split('\n')) {
    if (line[1] === '\t') paths.set(line.slice(2), line[0] === '1');
  }
  return { facts, paths, pendingHandlers: [...new Set(pending)], complete: sections.has('E') };
}

/** One type's section, parsed; the same text for the same items is parsed once. Converged hosts
 *  that share a compiled section (compile-reuse.ts) print the same sections, so the second host
 *  on gets the first one's facts, and decideAll() its decisions (the facts are the same objects).
 *  One text is kept per item list: a host whose text differs is parsed on its own. */
function parseSection(type: ResourceType<unknown>, text: string, items: ProbeItem<unknown>[]): Map<string, Facts> {
  const known = sectionCache.get(items);
  if (known?.text === text) return known.parsed;
  const parsed = type.parse ? type.parse(text, items) : parseFacts(text);
  if (!known) sectionCache.set(items, { text, parsed });
  return parsed;
}

const sectionCache = new WeakMap<ProbeItem<unknown>[], { text: string; parsed: Map<string, Facts> }>();

export interface ApplyResult extends ParsedSteps {
  /** Output of the verification probe, if the script got that far. */
  verifyOutput?: string;
}

export function parseApply(output: string, nonce: string): ApplyResult {
  const vMarker = `\n${nonce} V\n`;
  const vAt = output.indexOf(vMarker);
  const head = vAt >= 0 ? output.slice(0, vAt) : output;
  return { ...parseSteps(head, nonce), verifyOutput: vAt >= 0 ? output.slice(vAt + 1) : undefined };
}

export function splitSections(output: string, nonce: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = ('\n' + output).split(`\n${nonce} `);
  for (const part of parts.slice(1)) {
    const nl = part.indexOf('\n');
    const name = nl < 0 ? part : part.slice(0, nl);
    out.set(name.trim(), nl < 0 ? '' : part.slice(nl + 1));
  }
  return out;
}

/** The resources not skipped, by type, with the items their type probes and parses; once
 *  per list (the lists are not changed after compile). */
function itemsByType(resources: PlannedResource[]): Map<ResourceType<unknown>, { resources: PlannedResource[]; items: ProbeItem<unknown>[] }> {
  const known = groupsCache.get(resources);
  if (known) return known;
  const m = new Map<ResourceType<unknown>, { resources: PlannedResource[]; items: ProbeItem<unknown>[] }>();
  for (const r of resources) {
    if (r.skipped) continue;
    const group = m.get(r.type) ?? { resources: [], items: [] };
    group.resources.push(r);
    group.items.push({ key: String(r.index), params: r.params });
    m.set(r.type, group);
  }
  groupsCache.set(resources, m);
  return m;
}

const groupsCache = new WeakMap<PlannedResource[], Map<ResourceType<unknown>, { resources: PlannedResource[]; items: ProbeItem<unknown>[] }>>();
