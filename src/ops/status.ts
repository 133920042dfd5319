// keel status: per host, in one round trip (status-script.ts, the lock, the history and the
// provision probe in one script): the live release, the app's processes, nginx and the
// maintenance switch, disk free, the lock, the newest dump, and whether `keel plan` would
// change something (the probe's facts decided as --check decides them).
import { decideAll, isChange } from '../engine/decide.js';
import { describeHolder, parseLockReport, peekSnippet } from '../engine/lock.js';
import type { HostPlan } from '../engine/plan.js';
import { HostPool } from '../engine/pool.js';
import { newNonce } from '../engine/script-parts.js';
import { activeResources, buildProbeScript, parseProbe } from '../engine/script.js';
import { parseHistory, readSnippet } from '../deploy/history.js';
import type { HostSession } from '../ssh/types.js';
import type { AppFacts } from './hosts.js';
import { parseStatus, type ParsedStatus } from './status-parse.js';
import { statusSnippet } from './status-script.js';

export interface StatusHost {
  plan: HostPlan;
  facts: AppFacts;
  backupDir?: string;
}

export interface HostStatus extends Partial<ParsedStatus> {
  name: string;
  error: string | null;
  lock?: { state: 'free' | 'held' | 'stale'; holder: string | null };
  drift?: { changes: number; resources: { id: string; reason: string }[]; error: string | null };
  /** Scripts sent to the host: one. */
  roundTrips?: number;
  durationMs: number;
}

export async function hostStatuses(
  hosts: StatusHost[],
  connect: (plan: HostPlan) => Promise<HostSession>,
  mask: (s: string) => string,
  forks?: number,
): Promise<HostStatus[]> {
  const byName = new Map(hosts.map((h) => [h.plan.host.name, h]));
  const pool = new HostPool((host) => connect(byName.get(host.name)!.plan), forks);
  try {
    const outcomes = await pool.each(
      hosts.map((h) => h.plan.host),
      async (s, host) => {
        const started = Date.now();
        const h = byName.get(host.name)!;
        const nonce = newNonce();
        const probeNonce = newNonce();
        const active = activeResources(h.plan.resources);
        const prefix = statusSnippet({ facts: h.facts, backupDir: h.backupDir }, nonce) + peekSnippet(nonce) + readSnippet(nonce, 50);
        const r = await s.runScript(buildProbeScript(active, probeNonce, { wantDiff: false }, prefix), { timeoutMs: 300_000 });
        const out = mask(r.stdout);
        const lock = parseLockReport(out, nonce);
        const parsed = parseStatus(out, nonce, h.facts, parseHistory(out, nonce));
        const probe = parseProbe(r.stdout, probeNonce, active);
        let drift: HostStatus['drift'];
        if (r.code !== 0 || !probe.complete) {
          drift = { changes: 0, resources: [], error: mask(`the probe did not finish (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`) };
        } else {
          const decisions = decideAll(active, probe, { wantDiff: false });
          const resources = active.flatMap((res) => {
            const d = decisions.get(res.index);
            if (d instanceof Error) return [{ id: res.id, reason: `cannot tell: ${d.message}` }];
            return isChange(d) ? [{ id: res.id, reason: d.reason }] : [];
          });
          const pending = probe.pendingHandlers
            .filter((id) => h.plan.handlers.has(id))
            .map((id) => ({ id: `handler/${id}`, reason: 'pending from a run that did not finish' }));
          drift = {
            changes: resources.length + pending.length,
            resources: [...resources, ...pending].map((x) => ({ ...x, reason: mask(x.reason) })),
            error: null,
          };
        }
        return {
          name: host.name,
          error: null,
          ...parsed,
          lock:
            lock?.kind === 'held'
              ? { state: lock.holder.state === 'live' ? ('held' as const) : ('stale' as const), holder: describeHolder(lock.holder) }
              : { state: 'free' as const, holder: null },
          drift,
          roundTrips: s.roundTrips,
          durationMs: Date.now() - started,
        };
      },
    );
    return outcomes.map((o) => (o.ok ? o.value : { name: o.host.name, error: mask(o.error), durationMs: 0 }));
  } finally {
    await pool.close();
  }
}

/** Something a person should look at: a host not reached, a process failed, a stale lock. */
export function troubled(s: HostStatus): boolean {
  return !!s.error || !!s.processes?.some((p) => p.state === 'failed') || !!s.checks?.some((c) => !c.ok) || s.lock?.state === 'stale';
}
