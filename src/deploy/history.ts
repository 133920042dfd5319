// The deploy history: every deploy, rollback, restore, maintenance switch and lock release
// appends one JSON line on each host it touched, to $KEEL_STATE/history.jsonl (keel's state
// directory, /var/lib/keel for root: beside the lock, which is host-wide too). Who (the
// controller's user@host), what, when, from which release (or state) to which, the result,
// how long it took. `keel history`, `keel status` and `keel releases` read it.
//
// A run appends its line in its last script, the one that releases its lock, and only where it
// holds that lock: no extra round trip, and a host another run held gets no line from this one.
import { describeHolder, newLockOwner, type LockHolder, type LockOwner } from '../engine/lock.js';
import type { HostPlan } from '../engine/plan.js';
import { PRELUDE, wrap } from '../engine/script-parts.js';
import { sh } from '../shell/quote.js';

export type HistoryWhat = 'deploy' | 'rollback' | 'restore' | 'maintenance on' | 'maintenance off' | 'lock release';

export interface HistoryEntry {
  /** When it ended (ISO 8601, UTC). */
  time: string;
  /** When the run started. */
  started: string;
  /** The run's id: the lines of one run on several hosts share it. */
  run: string;
  /** user@controller. */
  who: string;
  what: HistoryWhat;
  /** The command as the lock records it (`deploy staging --branch main`). */
  command: string;
  app: string;
  /** A release id, or a state (`on`/`off`), or "" when there was none. */
  from: string;
  to: string;
  /** ok, failed, rolled back, interrupted. */
  result: string;
  durationMs: number;
  /** The branch and commit, the dump, whose lock, the first line of an error. */
  detail: string;
}

/** Lines kept in the file: older ones go when it reaches twice that. */
export const HISTORY_KEEP = 1000;
const FILE = '"$KEEL_STATE/history.jsonl"';

export function historyEntry(
  owner: LockOwner,
  what: HistoryWhat,
  e: { app: string; from: string; to: string; result: string; detail?: string },
  mask: (s: string) => string,
): HistoryEntry {
  const now = new Date();
  return {
    time: now.toISOString(),
    started: owner.started,
    run: owner.run_id,
    who: `${owner.user}@${owner.controller}`,
    what,
    command: owner.command,
    app: e.app,
    from: e.from,
    to: e.to,
    result: e.result,
    durationMs: Math.max(0, now.getTime() - Date.parse(owner.started)),
    // One line, and short: the history is for reading across hosts, not for logs.
    detail: mask((e.detail ?? '').split('\n')[0]!.slice(0, 300)),
  };
}

/** Shell appending `entry` (needs PRELUDE's KEEL_STATE). With `runId`, only while that run
 *  holds the host's lock. */
export function appendSnippet(entry: HistoryEntry, runId?: string): string {
  const append = `mkdir -p -- "$KEEL_STATE" && printf '%s\\n' ${sh`${JSON.stringify(entry)}`.text} >> ${FILE}
if [ "$(wc -l < ${FILE})" -gt ${HISTORY_KEEP * 2} ]; then tail -n ${HISTORY_KEEP} ${FILE} > ${FILE}.tmp && mv -f -- ${FILE}.tmp ${FILE}; fi
`;
  if (!runId) return append;
  return `if grep -qxF ${sh`${'run_id=' + runId}`.text} "$KEEL_STATE/lock/owner" 2>/dev/null; then\n${append}fi\n`;
}

/** A whole script appending `entry` where run `runId` holds the lock (run before the lock's release). */
export function historyScript(entry: HistoryEntry | undefined, runId: string): string {
  return entry ? wrap(PRELUDE + appendSnippet(entry, runId)) : '';
}

/** Shell printing the newest `n` lines of the history, each after `<nonce> H `. */
export function readSnippet(nonce: string, n: number): string {
  const each = `while IFS= read -r keel_l; do printf '%s H %s\\n' ${sh`${nonce}`.text} "$keel_l"; done`;
  return `if [ -r ${FILE} ]; then tail -n ${Math.max(1, Math.floor(n))} ${FILE} | ${each}; fi\n`;
}

/** The entries readSnippet printed, oldest first; lines that are not entries are skipped. */
export function parseHistory(stdout: string, nonce: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const m of stdout.matchAll(new RegExp(`^${nonce} H (.*)$`, 'gm'))) {
    try {
      const e = JSON.parse(m[1]!) as HistoryEntry;
      if (e && typeof e === 'object' && typeof e.time === 'string' && typeof e.what === 'string') out.push(e);
    } catch {
      // a line cut by a full disk: not an entry
    }
  }
  return out;
}

/** A deploy's line for one host, or none when the deploy never got going (its lock refused). */
export function deployEntry(
  d: {
    owner: LockOwner;
    release: string;
    source: { branch: string; sha: string };
    config: { hosts: { name: string; appName: string }[] };
    mask: (s: string) => string;
  },
  host: { name: string; previous: string; live: string } | undefined,
  ended: { status: string; error: string | null } | undefined,
): HistoryEntry | undefined {
  if (!host || !ended) return undefined;
  const app = d.config.hosts.find((h) => h.name === host.name)?.appName ?? '';
  const what = `${d.source.branch} @ ${d.source.sha.slice(0, 12)} as ${d.release}`;
  const result = ended.status === 'deployed' ? 'ok' : ended.status;
  return historyEntry(d.owner, 'deploy', { app, from: host.previous, to: host.live, result, detail: ended.error ? `${what}: ${ended.error}` : what }, d.mask);
}

/**
 * The line a rollback, restore or maintenance switch leaves on each host it locked: say how it
 * ended with `ended()` (a run that throws before leaves "failed, nothing changed"), and add
 * `script(host)` before the lock's release.
 */
export class HistoryNote {
  private outcome: { from: (host: string) => string; to: (host: string) => string; ok: boolean; detail: string } | undefined;

  constructor(
    private readonly owner: LockOwner,
    private readonly what: HistoryWhat,
    private readonly hosts: { name: string; appName: string }[],
    private readonly mask: (s: string) => string,
  ) {}

  ended(o: { from: (host: string) => string; to: (host: string) => string; ok: boolean; detail: string }): void {
    this.outcome = o;
  }

  script(host: string): string {
    const app = this.hosts.find((h) => h.name === host)?.appName ?? '';
    const o = this.outcome ?? { from: () => '', to: () => '', ok: false, detail: 'stopped before changing anything (see its output)' };
    const entry = historyEntry(this.owner, this.what, { app, from: o.from(host), to: o.to(host), result: o.ok ? 'ok' : 'failed', detail: o.detail }, this.mask);
    return historyScript(entry, this.owner.run_id);
  }
}

/** `keel lock release` removed the lock of `holder` on `host`: that goes in its history. */
export function lockReleaseScript(env: string, mode: string, plans: HostPlan[], host: string, holder: LockHolder, mask: (s: string) => string): string {
  const me = newLockOwner(`lock release ${env}${mode === 'force' ? ' --force' : ''}`);
  const app = String(plans.find((p) => p.host.name === host)?.vars.app_name ?? '');
  const detail = `removed the ${holder.state} lock of ${describeHolder(holder)}`;
  const entry = historyEntry(me, 'lock release', { app, from: 'locked', to: 'free', result: 'ok', detail }, mask);
  return wrap(PRELUDE + appendSnippet(entry));
}
