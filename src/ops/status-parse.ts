// What a host answered to keel status's snippet (status-script.ts), as a report: pure, so it is
// tested from recorded answers.
import type { HistoryEntry } from '../deploy/history.js';
import type { AppFacts } from './hosts.js';

export interface ReleaseState {
  live: string;
  sha: string;
  branch: string;
  /** When it went live (the switch), ISO 8601. */
  since: string | null;
  /** Who made it live: the deploy or rollback in the history, else who built it. */
  by: string;
  via: string | null;
}

export interface ProcessState {
  name: string;
  manager: 'supervisor' | 'systemd';
  /** running, failed, stopped, starting; a timer: waiting (or failed: its last run failed). */
  state: string;
  /** What the manager says, as it says it. */
  detail: string;
  since: string | null;
  /** systemd's NRestarts (supervisor does not count them). */
  restarts: number | null;
  /** Timers: the last and next run. */
  lastRun?: string | null;
  nextRun?: string | null;
  /** A failed one: the last lines of its log (journal, its file). */
  lastLines?: string[];
}

export interface ParsedStatus {
  release: ReleaseState | null;
  checks: { name: string; ok: boolean }[];
  processes: ProcessState[];
  nginx: { state: string; since: string | null } | null;
  maintenance: { on: boolean; since: string | null } | null;
  disk: { path: string; availableBytes: number; usedPercent: number; mount: string }[];
  dump: { path: string; bytes: number; time: string } | null;
}

const iso = (epochSeconds: number): string => new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');
/** systemctl show's time: `@1796522940` (--timestamp=unix), or `Sun 2026-12-06 02:27:49 UTC`
 *  (LastTriggerUSec ignores --timestamp); null when unset or in another zone. */
const epochOf = (v: string | undefined): string | null => {
  const m = /^@(\d+)/.exec(v ?? '');
  if (m) return m[1] !== '0' ? iso(Number(m[1])) : null;
  const d = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (UTC|GMT)$/.exec(v ?? '');
  return d ? `${d[1]}T${d[2]}Z` : null;
};

export function parseStatus(stdout: string, nonce: string, f: AppFacts, history: HistoryEntry[], now = Date.now()): ParsedStatus {
  const lines = stdout.split('\n').filter((l) => l.startsWith(nonce + ' '));
  const tagged = (tag: string) => lines.filter((l) => l.startsWith(`${nonce} ${tag} `)).map((l) => l.slice(nonce.length + tag.length + 2));
  const rel = new Map(tagged('R').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const));
  return {
    release: release(rel, history),
    checks: tagged('C').map((l) => {
      const [name = '', code = ''] = l.split(' ');
      return { name, ok: code === '0' };
    }),
    processes: [...supervisorPrograms(tagged('S'), blocks(lines, nonce, 'X', 'x'), f, now), ...systemdUnits(tagged('P'), blocks(lines, nonce, 'F', 'f'))],
    nginx: tagged('N').map((l) => ({ state: l.split(' ')[0] ?? '', since: epochOf(l.split(' ')[1]) }))[0] ?? null,
    maintenance: tagged('M').map((l) => ({ on: l.startsWith('on'), since: l.startsWith('on ') ? iso(Number(l.slice(3))) : null }))[0] ?? null,
    disk: tagged('D').map((l) => {
      const [path = '', kb = '0', used = '0', mount = ''] = l.split('\t');
      return { path, availableBytes: Number(kb) * 1024, usedPercent: parseInt(used, 10), mount };
    }),
    dump:
      tagged('B').map((l) => {
        const [path = '', bytes = '0', mtime = '0'] = l.split('\t');
        return { path, bytes: Number(bytes), time: iso(Number(mtime)) };
      })[0] ?? null,
  };
}

function release(rel: Map<string, string>, history: HistoryEntry[]): ReleaseState | null {
  const live = rel.get('live');
  if (!live) return null;
  // The newest deploy or rollback that made this release live says who did it and when.
  const made = [...history].reverse().find((e) => (e.what === 'deploy' || e.what === 'rollback') && e.to === live && e.result === 'ok');
  const since = rel.get('since');
  return {
    live,
    sha: rel.get('sha') ?? '',
    branch: rel.get('branch') ?? '',
    since: since ? iso(Number(since)) : null,
    by: made?.who ?? rel.get('by') ?? '',
    via: made?.what ?? null,
  };
}

/** Lines after each `<tag> <name>` header, by name (the `<sub> ` lines that follow it). */
function blocks(lines: string[], nonce: string, tag: string, sub: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const l of lines) {
    if (l.startsWith(`${nonce} ${tag} `)) out.set(l.slice(nonce.length + tag.length + 2), (current = []));
    else if (l.startsWith(`${nonce} ${sub} `) && current) current.push(l.slice(nonce.length + sub.length + 2));
  }
  return out;
}

/** The app's supervisor programs (named after it by the roles). */
function supervisorPrograms(status: string[], tails: Map<string, string[]>, f: AppFacts, now: number): ProcessState[] {
  const ours = (name: string) => name === f.appServiceName || [f.appServiceName, f.appName].some((p) => name.startsWith(`${p}-`) || name.startsWith(`${p}:`));
  return status.flatMap((line) => {
    const m = /^(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m || !ours(m[1]!)) return [];
    const [, name = '', raw = '', rest = ''] = m;
    const up = /uptime (?:(\d+) days?, )?(\d+):(\d\d):(\d\d)/.exec(rest);
    const upSeconds = up ? Number(up[1] ?? 0) * 86400 + Number(up[2]) * 3600 + Number(up[3]) * 60 + Number(up[4]) : undefined;
    const state =
      { RUNNING: 'running', STARTING: 'starting', STOPPED: 'stopped', STOPPING: 'stopping' }[raw] ??
      (/^(FATAL|BACKOFF|EXITED)$/.test(raw) ? 'failed' : raw.toLowerCase());
    return [
      {
        name,
        manager: 'supervisor' as const,
        state,
        detail: `${raw} ${rest}`.trim(),
        since: upSeconds !== undefined ? iso(Math.floor(now / 1000) - upSeconds) : null,
        restarts: null,
        ...(tails.has(name) ? { lastLines: tails.get(name)! } : {}),
      },
    ];
  });
}

/** Units from `systemctl show`; a timer takes in the service it starts. */
function systemdUnits(props: string[], tails: Map<string, string[]>): ProcessState[] {
  const units = new Map<string, Record<string, string>>();
  for (const l of props) {
    const sp = l.indexOf(' ');
    const unit = l.slice(0, sp);
    const kv = l.slice(sp + 1);
    const eq = kv.indexOf('=');
    if (eq > 0) units.set(unit, { ...units.get(unit), [kv.slice(0, eq)]: kv.slice(eq + 1) });
  }
  const out: ProcessState[] = [];
  for (const [unit, p] of units) {
    const base = unit.replace(/\.(service|timer)$/, '');
    if (unit.endsWith('.service') && units.has(`${base}.timer`)) continue; // shown with its timer
    const active = `${p.ActiveState}/${p.SubState}`;
    const restarts = p.NRestarts !== undefined && p.NRestarts !== '' ? Number(p.NRestarts) : null;
    if (unit.endsWith('.timer')) {
      const job = units.get(`${base}.service`);
      const failed = job?.ActiveState === 'failed' || (job?.Result !== undefined && job.Result !== 'success');
      out.push({
        name: unit,
        manager: 'systemd',
        state: failed ? 'failed' : p.ActiveState === 'active' ? 'waiting' : (p.ActiveState ?? ''),
        detail: `${active}; last run: ${job?.Result ?? '?'}`,
        since: epochOf(p.ActiveEnterTimestamp),
        restarts: null,
        lastRun: epochOf(p.LastTriggerUSec),
        nextRun: epochOf(p.NextElapseUSecRealtime),
        ...(tails.has(`${base}.service`) ? { lastLines: tails.get(`${base}.service`)! } : {}),
      });
      continue;
    }
    if (!unit.endsWith('.service')) continue; // a target groups units shown on their own
    const state =
      active === 'active/running'
        ? 'running'
        : p.ActiveState === 'failed' || active === 'activating/auto-restart'
          ? 'failed'
          : p.ActiveState === 'activating'
            ? 'starting'
            : p.ActiveState === 'inactive'
              ? 'stopped'
              : (p.ActiveState ?? '');
    out.push({
      name: unit,
      manager: 'systemd',
      state,
      detail: active + (p.Result && p.Result !== 'success' ? ` (${p.Result}, status ${p.ExecMainStatus})` : ''),
      since: state === 'running' ? epochOf(p.ActiveEnterTimestamp) : epochOf(p.StateChangeTimestamp),
      restarts,
      ...(tails.has(unit) ? { lastLines: tails.get(unit)! } : {}),
    });
  }
  return out;
}
