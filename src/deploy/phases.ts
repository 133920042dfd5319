// The hosts of a deploy, rollback or restore, phase by phase over the run's connections: take
// every host's lock first (reading what is live), then run a phase's steps on the hosts it
// concerns (one round trip each) and record every step. Shared by keel deploy and keel
// rollback (src/deploy/run.ts, src/deploy/ops.ts).
//
// What is live on a host is known only from what the host said: a host whose connection fails
// once its release may have changed is `unknown` until a later phase reaches it again.
import { LockedError, lastLines } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { HostPlan } from '../engine/plan.js';
import { HostPool } from '../engine/pool.js';
import { runSteps, watchSteps, type Step, type StepWatcher, type StepsRun } from '../engine/steps.js';
import { acquireSnippet, assertHeldSnippet, describeHolder, parseLockReport, type LockOwner } from '../engine/lock.js';
import { PRELUDE, newNonce, wrap } from '../engine/script-parts.js';
import { formatDuration, sleep } from './wait.js';
import type { Shell } from '../shell/quote.js';
import type { HostDeploy } from './config.js';
import { NOT_YET, liveStateSnippet, parseLiveState, type LiveState } from './scripts.js';

export interface StepRecord {
  phase: string;
  name: string;
  status: 'ok' | 'failed' | 'not run';
  durationMs?: number;
  code?: number;
  output?: string;
}

export interface HostDeployReport {
  name: string;
  /** The release that was live before ("" if none). */
  previous: string;
  /** The release live at the end ("" if none); null when the host could not be reached after
   *  its release may have changed: unknown, `keel releases` tells. */
  live: string | null;
  steps: StepRecord[];
}

/** The longest a waiting phase's script runs before the controller looks again. */
const ROUND_SECONDS = 5;

/** While waiting for a host's lock, the longest pause between two looks at it. */
const MAX_LOCK_PAUSE_MS = 5000;

/** How long lockAndRead waits for a lock held by a live run (0: it does not wait). */
export interface LockWait {
  ms: number;
  /** "waiting for <holder>: web1 is locked (giving up in 9m58s)": when the holder changes,
   *  and once a minute while it stays. */
  onWait?: (line: string) => void;
  /** An interrupt ends the wait. */
  signal?: AbortSignal;
}

export interface PhasesOptions {
  hosts: HostDeploy[];
  /** Hosts the run also locks and runs steps on, that run no release (role lb's): their steps
   *  are recorded, and named in failures, but they are not among the hosts' reports. */
  helpers?: HostDeploy[];
  connect: (plan: HostPlan) => Promise<HostSession>;
  forks?: number;
  owner: LockOwner;
  /** Hides secrets in captured output. */
  mask: (s: string) => string;
  onStep?: (host: string, step: StepRecord) => void;
  onPhase?: (phase: string) => void;
  /** Each step's begin, end (and output lines) as they happen on each host. */
  watch?: StepWatcher;
}

/** What a deploy's request gives every Phases it runs: how hosts are reached, who holds the
 *  lock, masking and progress. */
export type PhasesSettings = Omit<PhasesOptions, 'hosts' | 'helpers'>;

export function phasesFor(req: PhasesSettings, hosts: HostDeploy[], helpers: HostDeploy[]): Phases {
  const { connect, forks, owner, mask, onStep, onPhase, watch } = req;
  return new Phases({ hosts, helpers, connect, forks, owner, mask, onStep, onPhase, watch });
}

export class Phases {
  readonly pool: HostPool;
  readonly reports: Map<string, HostDeployReport>;
  /** The helpers' steps (role lb's drain and restore). */
  readonly helperReports: Map<string, HostDeployReport>;
  private readonly state = new Map<string, LiveState>();
  /** What each host's `extra` snippet printed in the lock script (lockAndRead). */
  private readonly lockOutput = new Map<string, { stdout: string; nonce: string }>();
  private readonly byName: Map<string, HostDeploy>;
  /** Hosts whose release may have changed since they were last heard from. */
  private readonly inDoubt = new Set<string>();

  constructor(private readonly o: PhasesOptions) {
    this.byName = new Map([...o.hosts, ...(o.helpers ?? [])].map((h) => [h.name, h]));
    this.pool = new HostPool((host) => o.connect(this.byName.get(host.name)!.plan), o.forks);
    this.reports = new Map(o.hosts.map((h) => [h.name, { name: h.name, previous: '', live: '', steps: [] }]));
    this.helperReports = new Map((o.helpers ?? []).map((h) => [h.name, { name: h.name, previous: '', live: '', steps: [] }]));
  }

  /** Where a host's steps are recorded: its report, or its helper report. */
  private reportOf(name: string): HostDeployReport {
    return (this.reports.get(name) ?? this.helperReports.get(name))!;
  }

  /** What was live on `h` when its lock was taken. */
  before(h: HostDeploy): LiveState {
    return this.state.get(h.name) ?? { live: '', sha: '', venv: '', slot: '' };
  }

  /** The run's first script on every host: take the lock and read what is live (and what
   *  `extra` prints, see lockRead). Hosts are locked in one order (by name), so two runs
   *  started together cannot each hold part, and a run that waits (`wait`) for a host holds
   *  only hosts that come before it: no two runs can wait for each other. */
  async lockAndRead(what: string, wait: LockWait = { ms: 0 }, extra?: (h: HostDeploy, nonce: string) => Shell | undefined): Promise<void> {
    this.o.onPhase?.('lock');
    const hosts = [...this.o.hosts, ...(this.o.helpers ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const deadline = Date.now() + wait.ms;
    let problem: string | undefined;
    // One at a time, in order: the first host refused stops the rest (nothing is taken past
    // it), and what was taken is released by close(). Connections open in parallel first.
    await Promise.all(hosts.map((h) => this.pool.session(h.plan.host).catch(() => undefined)));
    for (const h of hosts) {
      problem = await this.lockOne(h, deadline, wait, extra);
      if (problem) break;
    }
    if (!problem) return;
    const msg = `${problem}\nnothing was ${what} (every host must take part, so that all run one release)`;
    if (!problem.includes(' is locked by ')) throw new LockedError(msg);
    throw new LockedError(msg, {
      hint: problem.includes('stale lock')
        ? 'a stale lock stays until you clear it: check that no keel run is still working on the host, then `keel lock release <env>`'
        : wait.ms
          ? 'a longer --wait-lock, or see who holds what with `keel lock status <env>`'
          : 'wait for that run to finish (`keel lock status <env>` shows who holds what), or let keel wait for it: --wait-lock 10m',
    });
  }

  /** Take `h`'s lock, waiting for a live holder until `deadline`; a problem, or undefined. */
  private async lockOne(
    h: HostDeploy,
    deadline: number,
    wait: LockWait,
    extra?: (h: HostDeploy, nonce: string) => Shell | undefined,
  ): Promise<string | undefined> {
    let pause = 1000;
    let said = { holder: '', at: 0 };
    let unwritten = 0;
    for (;;) {
      const [o] = await this.pool.each([h.plan.host], async (s) => {
        const nonce = newNonce();
        const more = extra?.(h, nonce);
        const script = PRELUDE + acquireSnippet(nonce, this.o.owner) + liveStateSnippet(h, nonce) + (more ? `${more}\n` : '');
        const r = await s.runScript(wrap(script), { timeoutMs: 60_000 });
        this.lockOutput.set(h.name, { stdout: r.stdout, nonce });
        return { lock: parseLockReport(r.stdout, nonce), live: parseLiveState(r.stdout, nonce), r };
      });
      if (!o!.ok) return `${h.name}: ${o!.error}`;
      const { lock, live, r } = o!.value;
      if (lock?.kind === 'acquired') {
        const rep = this.reports.get(h.name); // none for a helper (role lb)
        if (rep) {
          rep.previous = rep.live = live.live;
          this.state.set(h.name, live);
        }
        return undefined;
      }
      if (lock?.kind !== 'held') return `${h.name}: could not take the lock (exit ${r.code}): ${r.stderr.trim()}`;
      const holder = lock.holder;
      // A lock whose owner is not written yet is being taken at this moment (the owner file
      // follows the mkdir in the same script): look again once before calling it stale.
      if (!holder.owner.run_id && unwritten++ === 0) {
        await sleep(1000, wait.signal);
        continue;
      }
      const who = describeHolder(holder);
      if (holder.state === 'stale') {
        const notWaited = wait.ms ? ' (--wait-lock does not wait for it: the run that took it is gone, nothing will release it)' : '';
        return `${h.name} is locked by a run that is gone (stale lock): ${who}${notWaited}`;
      }
      const left = deadline - Date.now();
      if (left <= 0 || wait.signal?.aborted) {
        return `${h.name} is locked by ${who}${wait.ms ? `; gave up after waiting ${formatDuration(wait.ms)} (--wait-lock)` : ''}`;
      }
      // Said when the holder changes, and once a minute while it stays.
      if (who !== said.holder || Date.now() - said.at >= 60_000) {
        wait.onWait?.(`waiting for ${who}: ${h.name} is locked (giving up in ${formatDuration(left)})`);
        said = { holder: who, at: Date.now() };
      }
      this.pool.setPhase(h.name, 'lock-wait');
      await sleep(Math.min(pause, left), wait.signal);
      pause = Math.min(pause * 1.5, MAX_LOCK_PAUSE_MS);
    }
  }

  /** The lines `<nonce> <key> <value>` that lockAndRead's `extra` printed on `h`, by key. */
  lockRead(h: HostDeploy, key: string): string | undefined {
    const o = this.lockOutput.get(h.name);
    return o ? new RegExp(`^${o.nonce} ${key} (.*)$`, 'm').exec(o.stdout)?.[1]?.trim() : undefined;
  }

  /** From now on, a host that cannot be reached has an unknown live release. */
  markInDoubt(hosts: HostDeploy[]): void {
    for (const h of hosts) this.inDoubt.add(h.name);
  }

  /** `hosts` are known to run `release` now. */
  setLive(hosts: HostDeploy[], release: (h: HostDeploy) => string): void {
    for (const h of hosts) {
      const rep = this.reports.get(h.name)!;
      if (rep.live !== null || !this.inDoubt.has(h.name)) rep.live = release(h);
    }
  }

  /** Run `steps` on `hosts`; record each step; true if every host passed. */
  async phase(name: string, hosts: HostDeploy[], steps: (h: HostDeploy) => Step[]): Promise<boolean> {
    return (await this.phaseOutcomes(name, hosts, steps)).every((r) => r.ok);
  }

  /**
   * A phase that waits for something (a server to answer, processes to count as up), in
   * rounds of at most ROUND_SECONDS: a step that exits NOT_YET has not seen it yet, and runs
   * again until the host's deploy_health_timeout has passed. So an interrupt is obeyed within
   * a round, not at the deadline; a definite failure ends the wait at once.
   */
  async waitPhase(name: string, hosts: HostDeploy[], steps: (h: HostDeploy, roundSeconds: number) => Step[], signal?: AbortSignal): Promise<boolean> {
    const deadline = new Map(hosts.map((h) => [h.name, Date.now() + h.healthTimeout * 1000]));
    let pending = hosts;
    let ok = true;
    while (pending.length) {
      const left = (h: HostDeploy) => Math.max(1, Math.ceil((deadline.get(h.name)! - Date.now()) / 1000));
      const outcomes = await this.phaseOutcomes(name, pending, (h) => steps(h, Math.min(ROUND_SECONDS, left(h))), { record: false });
      const again: HostDeploy[] = [];
      for (const o of outcomes) {
        const waiting =
          !o.ok &&
          !!o.run &&
          o.run.code === 0 &&
          o.run.steps.some((s) => s.code === NOT_YET) &&
          o.run.steps.every((s) => s.status !== 'failed' || s.code === NOT_YET);
        if (waiting && Date.now() < deadline.get(o.host.name)! && !signal?.aborted) {
          again.push(o.host);
          continue;
        }
        const rep = this.reportOf(o.host.name);
        if (o.run)
          this.recordRun(
            rep,
            name,
            o.run,
            waiting ? (out) => `not done after ${o.host.healthTimeout} s${signal?.aborted ? ' (interrupted)' : ''}: ${out}` : undefined,
          );
        else this.recordConnectionLoss(rep, name, o.error ?? 'connection lost');
        ok &&= o.ok;
      }
      pending = again;
    }
    return ok;
  }

  /** Like phase(), with each host's result: whether it passed, and the steps' run. */
  async phaseOutcomes(
    name: string,
    hosts: HostDeploy[],
    steps: (h: HostDeploy) => Step[],
    opts: { record?: boolean } = {},
  ): Promise<{ host: HostDeploy; ok: boolean; run?: StepsRun; error?: string }[]> {
    if (!hosts.length) return [];
    const record = opts.record ?? true;
    this.o.onPhase?.(name);
    for (const h of hosts) this.pool.setPhase(h.name, name);
    const outcomes = await this.pool.each(
      hosts.map((h) => h.plan.host),
      (s, host) => {
        const live = watchSteps(this.watcher(record), host.name, name);
        const opts = { captureAll: true, timed: true, prefix: assertHeldSnippet(this.o.owner.run_id), mask: this.o.mask, ...live };
        return runSteps(s, steps(this.byName.get(host.name)!), opts);
      },
    );
    return outcomes.map((o) => {
      const h = this.byName.get(o.host.name)!;
      const rep = this.reportOf(o.host.name);
      if (!o.ok) {
        if (record) this.recordConnectionLoss(rep, name, o.error);
        return { host: h, ok: false, error: o.error };
      }
      const ok = record ? this.recordRun(rep, name, o.value) : !o.value.steps.some((st) => st.status === 'failed') && o.value.code === 0;
      // Heard from again: what it runs is what the run's phases make it (setLive).
      if (ok && rep.live === null) rep.live = '';
      return { host: h, ok, run: o.value };
    });
  }

  /** The watcher; in a waiting phase's rounds, a step that ended "not yet" is not shown (the
   *  round runs again; the last one is shown from the record). */
  private watcher(record: boolean): StepWatcher | undefined {
    const w = this.o.watch;
    if (!w || record) return w;
    return { output: w.output, onEvent: (host, phase, e) => (e.type === 'end' && e.step.code === NOT_YET ? undefined : w.onEvent(host, phase, e)) };
  }

  private recordConnectionLoss(rep: HostDeployReport, phase: string, error: string): void {
    this.record(rep, { phase, name: 'connection', status: 'failed', output: error });
    // Whatever this phase did on it, nobody can say now.
    if (this.inDoubt.has(rep.name)) rep.live = null;
  }

  private recordRun(rep: HostDeployReport, phase: string, r: StepsRun, failedOutput?: (out: string) => string): boolean {
    for (const st of r.steps) {
      const output = st.status === 'failed' && failedOutput ? failedOutput(st.output ?? '') : st.output;
      this.record(rep, { phase, name: st.key, status: st.status === 'changed' ? 'ok' : 'failed', durationMs: st.durationMs, code: st.code, output });
    }
    const failed = r.steps.some((s) => s.status === 'failed');
    if (!failed && r.code !== 0) {
      this.record(rep, { phase, name: r.interruptedKey ?? 'script', status: 'failed', code: r.code ?? undefined, output: r.stderr });
    }
    for (const key of r.notRun) if (key !== r.interruptedKey) this.record(rep, { phase, name: key, status: 'not run' });
    return !failed && r.code === 0;
  }

  /** A step run on the controller for `h` (a load balancer's hook): recorded like the others. */
  recordLocal(h: HostDeploy, step: StepRecord): void {
    this.record(this.reportOf(h.name), step);
  }

  private record(rep: HostDeployReport, step: StepRecord): void {
    rep.steps.push(step);
    this.o.onStep?.(rep.name, step);
  }

  /** "migrate failed on web1 at migrate (exit 1) while applying 0002:\n<last lines>". */
  failure(phase: string | string[]): string {
    const phases = Array.isArray(phase) ? phase : [phase];
    const lines: string[] = [];
    for (const rep of [...this.reports.values(), ...this.helperReports.values()]) {
      for (const st of rep.steps.filter((s) => phases.includes(s.phase) && s.status === 'failed')) {
        // Django and alembic say which migration they were applying: name it.
        const applying = [...(st.output ?? '').matchAll(/Applying ([\w.]+)\.\.\.|Running upgrade \S* ?-> (\w+)/g)].pop();
        const which = applying ? ` while applying ${applying[1] ?? applying[2]}` : '';
        lines.push(
          `${st.phase} failed on ${rep.name} at ${st.name}${st.code !== undefined ? ` (exit ${st.code})` : ''}${which}:\n${lastLines(st.output ?? '', 12)}`,
        );
      }
    }
    return lines.join('\n');
  }

  /** The phases that failed, in the order given. */
  failedPhase(candidates: string[]): string | undefined {
    const all = [...this.reports.values(), ...this.helperReports.values()];
    return candidates.find((p) => all.some((h) => h.steps.some((s) => s.phase === p && s.status === 'failed')));
  }

  /** The first match of `text` in the output of a step of `phase` on a host (a migration ran,
   *  the revision alembic could not find), or null. */
  said(phase: string, text: RegExp): RegExpExecArray | null {
    for (const h of this.reports.values()) {
      for (const st of h.steps) {
        const m = st.phase === phase ? text.exec(st.output ?? '') : null;
        if (m) return m;
      }
    }
    return null;
  }

  /** Lines for the hosts whose live release is unknown, or none. */
  unknownHosts(): string[] {
    return [...this.reports.values()]
      .filter((r) => r.live === null)
      .map((r) => `${r.name}: not reachable since its release may have changed; what it runs is unknown: run keel releases`);
  }
}
