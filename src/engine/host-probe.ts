// The first round trip to a host: every resource's probe in one script, with the run lock
// taken (or looked at) in the same script.
import { lastLines } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { HostPlan } from './plan.js';
import type { ResourceResult, StepActivity } from './results.js';
import { buildProbeScript, parseProbe, type ProbeResult } from './script.js';
import { newNonce } from './script-parts.js';
import { acquireSnippet, parseLockReport, peekSnippet, type LockOwner, type LockReport } from './lock.js';
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
  | { kind: 'probed'; probe: ProbeResult; lock?: LockReport; startedAt: number }
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
  const active = plan.resources.filter((r) => !r.skipped);
  const script = timed('render', () => buildProbeScript(active, nonce, { wantDiff: opts.diff }, prefix));
  waitStart('probe', plan.host.name);
  const out = await session.runScript(script, { timeoutMs: opts.probeTimeoutMs ?? 300_000 }).finally(() => waitEnd('probe', plan.host.name));
  const lockReport = lock ? parseLockReport(out.stdout, nonce) : undefined;
  if (lockReport?.kind === 'held' && 'take' in lock!) return { kind: 'locked', lock: lockReport, startedAt };
  const probe = timed('decide', () => parseProbe(out.stdout, nonce, active));
  if (out.code !== 0 || !probe.complete) {
    return { kind: 'failed', error: `probe script failed (exit ${out.code ?? out.signal}):\n${lastLines(out.stderr || out.stdout, 10)}`, startedAt };
  }
  return { kind: 'probed', probe, lock: lockReport, startedAt };
}
