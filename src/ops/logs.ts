// keel logs: the app's logs of every host (log-sources.ts says which, logs-script.ts reads
// them), merged: the lines read so far sorted by time across hosts and sources, each with its
// host and source; with `follow`, then every new line as it comes, until stopped.
import type { HostPlan } from '../engine/plan.js';
import { newNonce } from '../engine/script-parts.js';
import type { HostLink, RemoteProcess } from '../ssh/link.js';
import { describe } from '../engine/pool.js';
import type { AppFacts } from './hosts.js';
import { LineSplitter } from './lines.js';
import type { LogSelection } from './log-sources.js';
import { logsScript, type LogQuery } from './logs-script.js';
import { runStaged, stage } from './staged.js';

export interface LogHost {
  plan: HostPlan;
  facts: AppFacts;
  selection: LogSelection;
}

export interface LogLine {
  host: string;
  source: string;
  /** ISO 8601 UTC, as read from the line (or its file's time); '' when following. */
  time: string;
  line: string;
}

export interface LogsRequest {
  hosts: LogHost[];
  query: LogQuery;
  link: (plan: HostPlan) => Promise<HostLink>;
  mask: (s: string) => string;
  /** The lines read so far, merged (called once), then each new line with `follow`. */
  onLines: (lines: LogLine[]) => void;
  /** With `follow`: stops following (Ctrl-C). */
  signal?: AbortSignal;
}

export interface LogsResult {
  errors: { host: string; error: string }[];
}

interface HostRun {
  host: string;
  history: LogLine[];
  /** Reached the end of what was there (or failed). */
  read: boolean;
  proc?: RemoteProcess;
  link?: HostLink;
  error?: string;
  offset: number;
}

export async function readLogs(req: LogsRequest): Promise<LogsResult> {
  const runs: HostRun[] = req.hosts.map((h) => ({ host: h.plan.host.name, history: [], read: false, offset: 0 }));
  let live = false;
  const pendingLive: LogLine[] = [];
  const flushHistoryWhenAllRead = () => {
    if (live || !runs.every((r) => r.read)) return;
    live = true;
    // Stable: lines of one time keep their host's and source's order.
    const all = runs.flatMap((r) => r.history).sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    req.onLines(all);
    if (pendingLive.length) req.onLines(pendingLive.splice(0));
  };
  // Ending stdin stops the script and its followers on the host (logs-script.ts); a signal,
  // then closing the channel, if that does not do within seconds.
  const stop = () => {
    for (const r of runs) r.proc?.end();
    setTimeout(() => runs.forEach((r) => r.proc?.signal('TERM')), 3000).unref();
    setTimeout(() => runs.forEach((r) => r.proc?.close()), 5000).unref();
  };
  req.signal?.addEventListener('abort', stop);
  try {
    await Promise.all(
      req.hosts.map(async (h, i) => {
        const run = runs[i]!;
        try {
          await follow(req, h, run, (l) => (live ? req.onLines([l]) : pendingLive.push(l)), flushHistoryWhenAllRead);
        } catch (err) {
          run.error = req.mask(describe(err));
        } finally {
          run.read = true;
          flushHistoryWhenAllRead();
          await run.link?.close().catch(() => undefined);
        }
      }),
    );
  } finally {
    req.signal?.removeEventListener('abort', stop);
  }
  return { errors: runs.filter((r) => r.error).map((r) => ({ host: r.host, error: r.error! })) };
}

/** One host: start the script, sort its lines into history and live ones, until it ends. */
async function follow(req: LogsRequest, h: LogHost, run: HostRun, onLive: (l: LogLine) => void, onRead: () => void): Promise<void> {
  const nonce = newNonce();
  const host = h.plan.host.name;
  const logs = `${h.facts.appRoot}/logs`;
  run.link = await req.link(h.plan);
  const path = await stage(run.link.session, logsScript(logs, h.selection, req.query, nonce));
  if (req.signal?.aborted) return;
  let stderr = '';
  const lines = new LineSplitter((raw) => {
    if (!raw.startsWith(nonce + ' ')) return;
    const kind = raw.slice(nonce.length + 1, nonce.length + 2);
    const rest = raw.slice(nonce.length + 3);
    if (kind === 'Z') run.offset = utcOffsetMinutes(rest);
    else if (kind === 'L') {
      run.read = true;
      onRead();
    } else if (kind === 'H') {
      const [ts = '', source = '', ...line] = rest.split('\t');
      run.history.push({ host, source, time: toUtc(ts, run.offset), line: req.mask(line.join('\t')) });
    } else if (kind === 'F') {
      const [source = '', ...line] = rest.split('\t');
      onLive({ host, source, time: '', line: req.mask(line.join('\t')) });
    }
  });
  const errors = new LineSplitter((l) => (stderr += `${l}\n`));
  run.proc = await run.link.start(runStaged(path), { become: true, onStdout: (d) => lines.push(d), onStderr: (d) => errors.push(d) });
  if (!req.query.follow || req.signal?.aborted) run.proc.end();
  const x = await run.proc.exited;
  lines.flush();
  errors.flush();
  const stopped = req.signal?.aborted;
  if (!stopped && (x.lost || (x.code !== 0 && x.code !== null))) {
    throw new Error(x.lost ? `connection lost: ${x.lost}` : `reading the logs failed (exit ${x.code}):\n${stderr.trim().split('\n').slice(-6).join('\n')}`);
  }
}

/** "+0100" -> 60. */
function utcOffsetMinutes(z: string): number {
  const m = /^([+-])(\d\d)(\d\d)$/.exec(z.trim());
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

/** yyyymmddhhmmss in a host's local time -> ISO 8601 UTC ('' if not a time). */
export function toUtc(ts: string, offsetMinutes: number): string {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(ts);
  if (!m) return '';
  const local = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return new Date(local - offsetMinutes * 60_000).toISOString().replace('.000Z', 'Z');
}

/** --since: 90s, 10m, 2h, 1d, or a date and time (ISO 8601); seconds since the epoch. */
export function parseSince(v: string, now = Date.now()): number | undefined {
  const rel = /^(\d+)\s*(s|m|h|d)$/.exec(v.trim());
  if (rel) return Math.floor(now / 1000) - Number(rel[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
}
