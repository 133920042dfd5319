// keel history: the deploy history of each host (src/deploy/history.ts), read in one round
// trip per host and merged: the lines one run left on several hosts become one entry.
import type { HostPlan } from '../engine/plan.js';
import { HostPool } from '../engine/pool.js';
import { PRELUDE, newNonce, wrap } from '../engine/script-parts.js';
import { parseHistory, readSnippet, type HistoryEntry } from '../deploy/history.js';
import type { HostSession } from '../ssh/types.js';

export interface HistoryRun {
  run: string;
  time: string;
  started: string;
  who: string;
  what: string;
  command: string;
  /** ok when every host says ok; else the first other result. */
  result: string;
  durationMs: number;
  detail: string;
  hosts: { host: string; app: string; from: string; to: string; result: string }[];
}

export interface HostHistory {
  host: string;
  entries: HistoryEntry[];
  error?: string;
}

/** The newest `last` entries of each host. */
export async function readHistories(
  plans: HostPlan[],
  connect: (plan: HostPlan) => Promise<HostSession>,
  last: number,
  forks?: number,
): Promise<HostHistory[]> {
  const byName = new Map(plans.map((p) => [p.host.name, p]));
  const pool = new HostPool((host) => connect(byName.get(host.name)!), forks);
  try {
    const outcomes = await pool.each(
      plans.map((p) => p.host),
      async (s) => {
        const nonce = newNonce();
        const r = await s.runScript(wrap(PRELUDE + readSnippet(nonce, last)), { timeoutMs: 60_000 });
        return parseHistory(r.stdout, nonce);
      },
    );
    return outcomes.map((o) => (o.ok ? { host: o.host.name, entries: o.value } : { host: o.host.name, entries: [], error: o.error }));
  } finally {
    await pool.close();
  }
}

/** One entry per run, newest last; a run's hosts in the order they come. */
export function mergeRuns(histories: HostHistory[]): HistoryRun[] {
  const runs = new Map<string, HistoryRun>();
  for (const h of histories) {
    for (const e of h.entries) {
      const key = `${e.run}|${e.what}`;
      let r = runs.get(key);
      if (!r) {
        r = { ...pick(e), hosts: [] };
        runs.set(key, r);
      }
      r.hosts.push({ host: h.host, app: e.app, from: e.from, to: e.to, result: e.result });
      if (e.time > r.time) r.time = e.time;
      r.durationMs = Math.max(r.durationMs, e.durationMs);
      if (r.result === 'ok' && e.result !== 'ok') r.result = e.result;
    }
  }
  return [...runs.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

function pick(e: HistoryEntry): Omit<HistoryRun, 'hosts'> {
  return {
    run: e.run,
    time: e.time,
    started: e.started,
    who: e.who,
    what: e.what,
    command: e.command,
    result: e.result,
    durationMs: e.durationMs,
    detail: e.detail,
  };
}

/** "web1, worker1: 20261201-... -> 20261202-..." (hosts that went the same way together);
 *  for a switch or a restore, what the host ended with ("web1: on"). */
export function describeMoves(r: HistoryRun): string {
  const releases = r.what === 'deploy' || r.what === 'rollback';
  const groups = new Map<string, string[]>();
  for (const h of r.hosts) {
    const move = releases ? `${h.from || '(none)'} -> ${h.to || '(none)'}` : h.to;
    groups.set(move, [...(groups.get(move) ?? []), h.host]);
  }
  return [...groups].map(([move, hosts]) => `${hosts.join(', ')}${move ? `: ${move}` : ''}`).join('; ');
}
