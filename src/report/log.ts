// Every run writes a JSON-lines log under .keel/logs/, through the redactor, each event with
// the time it happened. Resource events come in bursts (a probe reports every resource that
// is fine at once: a 200-resource run on 10 hosts is 2000 events): they are written together
// once the burst is over (the next turn of the event loop), so a log being followed shows
// each step's result when it ends, at one write per burst rather than per event.
//
// A project keeps the logs of its newest KEEP_LOGS runs (KEEL_KEEP_LOGS=N another number, 0
// every log): a 400-resource no-op on 10 hosts writes about 0.8 MB, and a project's logs
// otherwise only ever grew. Each run removes the oldest beyond that when it starts; only
// files named as keel names its logs are ever removed.
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, InterruptedError, LockedError } from '../errors.js';
import type { Redactor } from './redact.js';
import type { ResourceResult } from '../engine/results.js';

/** Events that come many at once: written at the end of their burst, not one write each. */
const BURSTS = new Set(['resource', 'step', 'output']);

export class RunLog {
  private fd: number | null;
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled: NodeJS.Immediate | undefined;
  readonly file: string;

  constructor(
    root: string,
    command: string,
    env: string,
    private readonly redactor: Redactor,
  ) {
    const keep = keepLogs(process.env);
    const dir = join(root, '.keel', 'logs');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    this.file = join(dir, `${stamp}-${command}-${env}.jsonl`);
    this.fd = openSync(this.file, 'a', 0o600);
    pruneLogs(dir, keep);
  }

  write(event: string, data: Record<string, unknown> = {}): void {
    if (this.fd === null) return;
    this.queue(JSON.stringify(this.redactor.maskValue({ time: this.now(), event, ...data })), BURSTS.has(event));
  }

  /** A line to write: now, or at the end of its burst (or once 64 KB are waiting). */
  private queue(line: string, burst: boolean): void {
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!burst || this.pendingBytes > 64 * 1024) this.flush();
    else this.scheduled ??= setImmediate(() => this.flush()).unref();
  }

  /** A resource's result: one line per host that reported it. A result object reported by many
   *  hosts (results.ts okResult) is masked and made into text once. */
  resource(host: string, res: ResourceResult): void {
    if (this.fd === null) return;
    let fields = this.resultText.get(res);
    if (fields === undefined) {
      // Its fields after `host`, as write() would put them: the diff is not logged.
      fields = JSON.stringify(this.redactor.maskValue({ ...res, diff: undefined })).slice(1);
      this.resultText.set(res, fields);
    }
    let hostText = this.hostText.get(host);
    if (hostText === undefined) this.hostText.set(host, (hostText = JSON.stringify(this.redactor.mask(host))));
    // The time is keel's own ISO text: nothing in it to escape or mask.
    this.queue(`{"time":"${this.now()}","event":"resource","host":${hostText}${fields === '}' ? '' : ','}${fields}`, true);
  }

  private readonly resultText = new WeakMap<ResourceResult, string>();
  private readonly hostText = new Map<string, string>();

  private lastMs = -1;
  private lastIso = '';

  /** The time as ISO text, made once per millisecond: a probe's burst is thousands of
   *  events, and a Date and its text for each was a few ms of a 4,000-resource no-op. */
  private now(): string {
    const ms = Date.now();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = new Date(ms).toISOString();
    }
    return this.lastIso;
  }

  /** Why a run stopped before its end, when the log should say so: an interrupt, a lock. */
  aborted(err: unknown): void {
    if (err instanceof InterruptedError) this.write('interrupted', { signal: err.signal, hosts: err.lines });
    else if (err instanceof LockedError) this.write('locked', { message: err.message });
  }

  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.fd === null || this.pending.length === 0) return;
    writeSync(this.fd, this.pending.join('\n') + '\n');
    this.pending = [];
    this.pendingBytes = 0;
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** How many runs' logs a project keeps unless KEEL_KEEP_LOGS says otherwise. */
export const KEEP_LOGS = 200;

/** A log keel wrote: the run's start (toISOString with `:` and `.` as `-`), command, env. */
const LOG_NAME = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-.+\.jsonl$/;

/** KEEL_KEEP_LOGS (a whole number; 0 keeps every log), or KEEP_LOGS when it is unset or empty. */
export function keepLogs(env: NodeJS.ProcessEnv): number {
  const v = env.KEEL_KEEP_LOGS?.trim();
  if (!v) return KEEP_LOGS;
  if (!/^\d{1,9}$/.test(v)) {
    throw new ConfigError(`KEEL_KEEP_LOGS="${env.KEEL_KEEP_LOGS}" is not a whole number`, undefined, {
      hint: `it is how many runs' logs .keel/logs/ keeps (default ${KEEP_LOGS}); 0 keeps every log`,
    });
  }
  return Number(v);
}

/** Remove the oldest of the logs in `dir` beyond the newest `keep` (0: none). Their names start
 *  with the time, so the newest sort last. Best effort: a log another run removed first, or
 *  one that cannot be removed, is left to the next run. */
export function pruneLogs(dir: string, keep: number): void {
  if (keep <= 0) return;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => LOG_NAME.test(n));
  } catch {
    return;
  }
  if (names.length <= keep) return;
  names.sort();
  for (const n of names.slice(0, names.length - keep)) {
    try {
      rmSync(join(dir, n), { force: true });
    } catch {
      // the next run tries again
    }
  }
}
