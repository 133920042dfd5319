// The run's connections: one session per host, opened on first use (at most `forks` hosts
// worked on at once) and reused by every phase of the run. Provision and deploy both run their
// phases through it: "do this on these hosts, results per host". A host whose connection fails
// or drops gets an error outcome; the others carry on.
//
// On an interrupt, abandon() lets go of every host at once: a host that is running a script
// finishes it on its own (the script ignores the hang-up), then runs the release script queued
// behind it; an idle host runs the release script now.
import pLimit from 'p-limit';
import { KeelError } from '../errors.js';
import type { Host } from '../inventory/types.js';
import type { HostSession } from '../ssh/types.js';
import { waitEnd, waitStart } from '../timing.js';

export type Connector = (host: Host) => Promise<HostSession>;

export type Outcome<T> = { host: Host; ok: true; value: T } | { host: Host; ok: false; error: string; roundTrips: number };

/** What a host was doing when the run was interrupted. */
export interface HostInterruptState {
  host: string;
  /** The phase it was in (`probe`, `apply`, `build`...) or `done` / `not started`. */
  phase: string;
  /** A script was running on it: it finishes on its own after keel exits. */
  busy: boolean;
  /** Its script was still being sent: it never ran (and the lock is released at once). */
  cutOff?: boolean;
}

export class HostPool {
  private readonly sessions = new Map<string, Promise<HostSession>>();
  private readonly opened = new Map<string, HostSession>();
  private readonly phases = new Map<string, string>();
  private readonly limit: ReturnType<typeof pLimit>;
  private closed = false;

  constructor(
    private readonly connect: Connector,
    forks?: number,
  ) {
    this.limit = pLimit(forks === undefined ? Infinity : Math.max(1, forks));
  }

  /** Record what a host is doing (for an interrupt's report). */
  setPhase(host: string, phase: string): void {
    this.phases.set(host, phase);
  }

  session(host: Host): Promise<HostSession> {
    if (this.closed) return Promise.reject(new KeelError('the run was interrupted'));
    let s = this.sessions.get(host.name);
    if (!s) {
      this.setPhase(host.name, 'connect');
      s = this.connect(host).then((session) => {
        this.opened.set(host.name, session);
        return session;
      });
      // A failed connection is tried again by a later phase only if asked for again.
      s.catch(() => this.sessions.delete(host.name));
      this.sessions.set(host.name, s);
    }
    return s;
  }

  /** Run `fn` on every host (at most `forks` at once); one outcome per host, in order. */
  each<T>(hosts: Host[], fn: (session: HostSession, host: Host) => Promise<T>): Promise<Outcome<T>[]> {
    return Promise.all(
      hosts.map((host) =>
        this.limit(async (): Promise<Outcome<T>> => {
          let session: HostSession | undefined;
          try {
            session = await this.session(host);
            return { host, ok: true, value: await fn(session, host) };
          } catch (err) {
            return { host, ok: false, error: describe(err), roundTrips: session?.roundTrips ?? 0 };
          }
        }),
      ),
    );
  }

  /** Close every session, running `last(host)` first where given (a lock release). */
  async close(last?: (host: string) => string | undefined): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [...this.opened.values()].map(async (s) => {
        const script = last?.(s.host);
        waitStart('release', s.host);
        if (script && !s.busy) await s.runScript(script, { timeoutMs: 30_000 }).catch(() => undefined);
        await s.close().catch(() => undefined);
        waitEnd('release', s.host);
      }),
    );
  }

  /** An interrupt: let go of every host now, queueing `last(host)` behind what it runs. */
  async abandon(hosts: string[], last: (host: string) => string | undefined): Promise<HostInterruptState[]> {
    this.closed = true;
    const states = hosts.map((name): HostInterruptState => {
      const s = this.opened.get(name);
      const cutOff = !!s?.sending;
      return { host: name, phase: this.phases.get(name) ?? 'not started', busy: !!s?.busy && !cutOff, ...(cutOff && { cutOff }) };
    });
    await Promise.all([...this.opened.values()].map((s) => s.abandon(last(s.host)).catch(() => undefined)));
    return states;
  }
}

export function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof KeelError ? err.hint : undefined;
  return hint ? `${message}\nhint: ${hint}` : message;
}
