// deploy_notify: a message when a deploy, a rollback or a restore starts and when it ends, to a
// Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat: `{"text": ...}`) or to a
// generic JSON webhook (the fields below as they are). A notification is a side matter: one
// that fails or hangs (each has a timeout) is a warning, never a change in the run's result.
//
// The payload is built from the fields of `Notice` alone (names, shas, times, the first line
// of an error), never from variables or output, and every string in it goes through the run's
// redactor before it is sent: a secret cannot reach a chat channel.
import { hostname, userInfo } from 'node:os';
import { ConfigError, InterruptedError } from '../errors.js';

export const NOTIFY_EVENTS = ['start', 'success', 'failure', 'rollback'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

export interface NotifyTarget {
  /** For warnings: `deploy_notify[0] (slack, hooks.slack.com)`: never the URL, which holds a token. */
  label: string;
  kind: 'slack' | 'webhook';
  url: string;
  events: NotifyEvent[];
  timeoutMs: number;
}

export type NoticeCommand = 'deploy' | 'rollback' | 'backup restore';

/** Everything a notification says. */
export interface Notice {
  command: NoticeCommand;
  event: NotifyEvent;
  env: string;
  branch: string | null;
  sha: string | null;
  release: string | null;
  /** The dump restored (keel backup restore). */
  dump?: string | null;
  who: string;
  /** The CI run, when keel runs in one (GitHub Actions, GitLab CI). */
  url: string | null;
  hosts: string[];
  /** started, deployed, failed, rolled back, rolled back to ..., restored. */
  result: string;
  durationMs: number | null;
  /** The first line of what went wrong. */
  error: string | null;
}

export interface Delivery {
  target: string;
  event: NotifyEvent;
  ok: boolean;
  status: number | null;
  error: string | null;
  durationMs: number;
}

const DEFAULT_TIMEOUT_S = 10;

/** deploy_notify as the role declares it, checked (the schema checked the types). */
export function notifyTargets(value: unknown, file: string): NotifyTarget[] {
  if (!Array.isArray(value)) return [];
  return value.map((raw, i) => {
    const e = raw as { slack?: string; webhook?: string; events?: NotifyEvent[]; timeout?: number };
    const where = `deploy_notify[${i}]`;
    if ((e.slack === undefined) === (e.webhook === undefined)) {
      throw new ConfigError(`${where}: give either slack: <incoming webhook URL> or webhook: <URL>, not ${e.slack === undefined ? 'neither' : 'both'}`, {
        file,
      });
    }
    const kind = e.slack !== undefined ? 'slack' : 'webhook';
    const url = String(e.slack ?? e.webhook);
    let host: string;
    try {
      const u = new URL(url);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http');
      host = u.host;
    } catch {
      // Never the value: a webhook URL is a credential.
      throw new ConfigError(`${where}.${kind}: not an http(s) URL`, { file }, { hint: `e.g. ${kind}: "{{secrets.${kind}_url}}" with the URL in the vault` });
    }
    return {
      label: `${where} (${kind}, ${host})`,
      kind,
      url,
      events: e.events?.length ? e.events : [...NOTIFY_EVENTS],
      timeoutMs: (e.timeout ?? DEFAULT_TIMEOUT_S) * 1000,
    };
  });
}

/** Who runs keel, and from which CI run: the CI's user when there is one. */
export function runContext(env: NodeJS.ProcessEnv = process.env): { who: string; url: string | null } {
  const local = `${safeUser()}@${hostname()}`;
  if (env.GITHUB_ACTIONS === 'true' && env.GITHUB_RUN_ID) {
    const url = `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY ?? ''}/actions/runs/${env.GITHUB_RUN_ID}`;
    return { who: env.GITHUB_ACTOR ? `${env.GITHUB_ACTOR} (GitHub Actions)` : local, url };
  }
  if (env.GITLAB_CI === 'true') {
    return { who: env.GITLAB_USER_LOGIN ? `${env.GITLAB_USER_LOGIN} (GitLab CI)` : local, url: env.CI_JOB_URL || env.CI_PIPELINE_URL || null };
  }
  return { who: local, url: null };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return '?';
  }
}

/** The first line of an error message, for a chat line; when it ends with a colon (what
 *  failed, then the command's own words), with the first of those words. */
export function firstLine(text: string | null | undefined): string | null {
  const lines = (text ?? '')
    .split('\n')
    .map((l) => l.trim().replace(/^\|\s?/, ''))
    .filter(Boolean);
  if (!lines.length) return null;
  const line = lines[0]!.endsWith(':') && lines[1] ? `${lines[0]} ${lines[1]}` : lines[0]!;
  return line.slice(0, 300);
}

const escapeSlack = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The Slack message: one line, with the CI run linked. */
export function slackText(n: Notice): string {
  const e = (s: string | null | undefined) => escapeSlack(s ?? '?');
  const what =
    n.command === 'deploy'
      ? `deploy of *${e(n.branch)}* @ \`${e(n.sha?.slice(0, 12))}\``
      : n.command === 'rollback'
        ? `rollback${n.release ? ` to ${e(n.release)}` : ''}`
        : `backup restore of ${e(n.dump)}`;
  const secs = n.durationMs !== null ? ` after ${(n.durationMs / 1000).toFixed(1)} s` : '';
  const hosts = n.hosts.length ? ` (${e(n.hosts.join(', '))})` : '';
  const link = n.url ? ` <${n.url}|CI run>` : '';
  const why = n.error ? `: ${e(n.error)}` : '';
  const env = `*${e(n.env)}*`;
  switch (n.event) {
    case 'start':
      return `:arrow_forward: ${env}: ${what} started by ${e(n.who)}${hosts}${link}`;
    case 'success':
      return `:white_check_mark: ${env}: ${what} ${e(n.result)}${n.command === 'deploy' ? ` as ${e(n.release)}` : ''}${hosts}${secs}, by ${e(n.who)}${link}`;
    case 'rollback':
      return `:warning: ${env}: ${what} ROLLED BACK${secs}, by ${e(n.who)}: every host is back on its previous release${why}${link}`;
    case 'failure':
      return `:x: ${env}: ${what} FAILED${secs}, by ${e(n.who)}${why}${link}`;
  }
}

/** What is POSTed to a target. */
export function payload(t: NotifyTarget, n: Notice): unknown {
  return t.kind === 'slack' ? { text: slackText(n) } : { keel: 1, ...n };
}

/** Sends notices as a run goes; `settle()` waits for every delivery (each bounded by its
 *  timeout) and warns about those that failed. */
export class Notifier {
  private readonly pending: Promise<Delivery>[] = [];
  /** Each target's last delivery: the next one waits for it (a channel never shows the end
   *  of a deploy before its start). */
  private readonly last = new Map<NotifyTarget, Promise<Delivery>>();

  constructor(
    private readonly targets: NotifyTarget[],
    private readonly o: { mask: (s: string) => string; warn: (line: string) => void },
  ) {}

  get enabled(): boolean {
    return this.targets.length > 0;
  }

  /** Starts the deliveries of `n` (does not wait for them). */
  send(n: Notice): void {
    const masked = maskNotice(n, this.o.mask);
    for (const t of this.targets.filter((x) => x.events.includes(n.event))) {
      const body = JSON.stringify(payload(t, masked));
      const before = this.last.get(t);
      const d = before ? before.then(() => deliver(t, n.event, body)) : deliver(t, n.event, body);
      this.last.set(t, d);
      d.then((r) => {
        if (!r.ok) this.o.warn(`warning: notification ${t.label} of "${n.event}" failed: ${r.error}; the ${n.command}'s result is not changed by it`);
      });
      this.pending.push(d);
    }
  }

  async settle(): Promise<Delivery[]> {
    return Promise.all(this.pending);
  }
}

function maskNotice(n: Notice, mask: (s: string) => string): Notice {
  const m = (s: string | null | undefined) => (typeof s === 'string' ? mask(s) : (s ?? null));
  return {
    ...n,
    env: mask(n.env),
    branch: m(n.branch),
    sha: m(n.sha),
    release: m(n.release),
    ...(n.dump !== undefined && { dump: m(n.dump) }),
    who: mask(n.who),
    url: m(n.url),
    hosts: n.hosts.map(mask),
    result: mask(n.result),
    error: m(n.error),
  };
}

async function deliver(t: NotifyTarget, event: NotifyEvent, body: string): Promise<Delivery> {
  const started = Date.now();
  const done = (ok: boolean, status: number | null, error: string | null): Delivery => ({
    target: t.label,
    event,
    ok,
    status,
    error,
    durationMs: Date.now() - started,
  });
  const signal = AbortSignal.timeout(t.timeoutMs);
  try {
    const res = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal, redirect: 'error' });
    const text = await res.text();
    if (res.ok) return done(true, res.status, null);
    return done(false, res.status, `HTTP ${res.status}${text.trim() ? ` (${text.trim().split('\n')[0]!.slice(0, 120)})` : ''}`);
  } catch (err) {
    if (signal.aborted) return done(false, null, `no answer within ${t.timeoutMs / 1000} s`);
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return done(false, null, e.cause?.code ?? e.cause?.message ?? e.message);
  }
}

/** A deploy's end, as a notice says it. */
export function deployEnd(r: { status: 'deployed' | 'failed' | 'rolled back'; error: string | null }): NoticeEnd {
  return { event: r.status === 'deployed' ? 'success' : r.status === 'rolled back' ? 'rollback' : 'failure', result: r.status, error: firstLine(r.error) };
}

export type NoticeBase = Omit<Notice, 'event' | 'result' | 'durationMs' | 'error'>;
export type NoticeEnd = Pick<Notice, 'event' | 'result' | 'error'> & Partial<NoticeBase>;

/** `run` between a start notice and an end notice (`ended` says which; a throw is a failure),
 *  then every delivery awaited: the caller prints its result once they are done or timed out. */
export async function withNotices<T>(n: Notifier, base: NoticeBase, run: () => Promise<T>, ended: (value: T) => NoticeEnd): Promise<T> {
  const started = Date.now();
  n.send({ ...base, event: 'start', result: 'started', durationMs: null, error: null });
  try {
    const value = await run();
    n.send({ ...base, ...ended(value), durationMs: Date.now() - started });
    return value;
  } catch (err) {
    const interrupted = err instanceof InterruptedError;
    n.send({
      ...base,
      event: 'failure',
      result: interrupted ? 'interrupted' : 'failed',
      error: firstLine((err as Error).message),
      durationMs: Date.now() - started,
    });
    throw err;
  } finally {
    await n.settle();
  }
}
