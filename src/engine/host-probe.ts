// The first round trip to a host: every resource's probe in one script, with the run lock
// taken (or looked at) in the same script.
//
// A plan that depends on the host's facts (variants.ts) is chosen by that same script; a host
// on a platform no variant covers gets its plan compiled once the facts are read, and probed
// again (the lock was taken by the first script).
import { ConfigError, configErrorsOf, lastLines } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { HostPlan } from './plan.js';
import type { ResourceResult, StepActivity } from './results.js';
import { activeResources, buildProbeScript, buildVariantProbeScript, parseProbe, parseVariant, type ProbeResult } from './script.js';
import { newNonce } from './script-parts.js';
import { acquireSnippet, parseLockReport, peekSnippet, type LockOwner, type LockReport } from './lock.js';
import { describeFacts, parseHostFacts, type HostFacts } from './facts.js';
import { timed, waitEnd, waitStart } from '../timing.js';

export interface HostRunOptions {
  check: boolean;
  diff: boolean;
  probeTimeoutMs?: number;
  applyTimeoutMs?: number;
  /** Live progress: a resource reached a final status. */
  onResult?: (host: string, result: ResourceResult) => void;
  onPhase?: (host: string, phase: string) => void;
  /** Live progress: a step of the apply script began, ended, or wrote a line (streamOutput). */
  onStep?: (host: string, step: StepActivity) => void;
  /** Send each step's output lines as they are written (-v). */
  streamOutput?: boolean;
}

export type ProbeOutcome =
  /** `plan`: the plan for the host's facts (the one given, or its variant for them). */
  | { kind: 'probed'; probe: ProbeResult; plan: HostPlan; facts?: HostFacts; lock?: LockReport; startedAt: number }
  | { kind: 'locked'; lock: Extract<LockReport, { kind: 'held' }>; startedAt: number }
  | { kind: 'failed'; error: string; startedAt: number };

export type Probed = Extract<ProbeOutcome, { kind: 'probed' }>;

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
  const ctx = { wantDiff: opts.diff };
  const variants = plan.byFacts?.variants;
  const script = timed('render', () =>
    variants ? buildVariantProbeScript(variants, nonce, ctx, prefix) : buildProbeScript(activeResources(plan.resources), nonce, ctx, prefix),
  );
  const timeoutMs = opts.probeTimeoutMs ?? 300_000;
  const runTimed = (text: string) => {
    waitStart('probe', plan.host.name);
    return session.runScript(text, { timeoutMs }).finally(() => waitEnd('probe', plan.host.name));
  };
  const out = await runTimed(script);
  const lockReport = lock ? parseLockReport(out.stdout, nonce) : undefined;
  if (lockReport?.kind === 'held' && 'take' in lock!) return { kind: 'locked', lock: lockReport, startedAt };
  const facts = parseHostFacts(out.stdout, nonce);
  let chosen = plan;
  let output = out;
  if (variants && out.code === 0 && facts) {
    const i = parseVariant(out.stdout, nonce);
    if (i !== undefined) chosen = variants[i]!.plan;
    else {
      // Another platform: its own plan, probed now.
      try {
        chosen = plan.byFacts!.compile(facts);
      } catch (err) {
        const why = configErrorsOf(err).map(describe).join('\n');
        return { kind: 'failed', error: `no plan for ${describeFacts(facts)}:\n${why}`, startedAt };
      }
      output = await runTimed(buildProbeScript(activeResources(chosen.resources), nonce, ctx));
    }
  }
  const probe = timed('decide', () => parseProbe(output.stdout, nonce, activeResources(chosen.resources)));
  if (output.code !== 0 || !probe.complete) {
    return {
      kind: 'failed',
      error: `probe script failed (exit ${output.code ?? output.signal}):\n${lastLines(output.stderr || output.stdout, 10)}`,
      startedAt,
    };
  }
  return { kind: 'probed', probe, plan: chosen, facts, lock: lockReport, startedAt };
}

function describe(e: ConfigError): string {
  return e.hint ? `${e.message}\nhint: ${e.hint}` : e.message;
}
