// keel deploy, across the hosts of an environment, phase by phase. A phase runs on every host
// concerned (one round trip each, over the run's connections); the deploy goes on to the next
// phase only if every host passed it:
//
//   lock -> dump (verified) -> build -> [maintenance on] -> migrate -> switch -> reload -> health
//        -> [maintenance off] -> prune -> unlock
//
// Nothing live changes before the switch: a failure up to the migration leaves the old release
// serving (the new one is marked failed). From the switch on, a failure on any host switches
// every host back to the previous release and reloads it, so web and workers never run
// different releases.
import { InterruptedError, LockedError, lastLines } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { HostPlan } from '../engine/plan.js';
import { HostPool } from '../engine/pool.js';
import { runSteps, type Step, type StepsRun } from '../engine/steps.js';
import { acquireSnippet, assertHeldSnippet, describeHolder, parseLockReport, releaseScript, type LockOwner } from '../engine/lock.js';
import { PRELUDE, newNonce, wrap } from '../engine/script-parts.js';
import { interruptLines, untilAborted } from '../engine/run.js';
import type { DeployConfig, HostDeploy } from './config.js';
import { parseDatabaseUrl } from './database.js';
import {
  buildSteps,
  dumpSteps,
  healthSteps,
  liveStateSnippet,
  maintenanceSteps,
  markFailedSteps,
  migrateSteps,
  parseLiveState,
  pruneSteps,
  reloadSteps,
  switchSteps,
  unlinkSteps,
} from './scripts.js';
import type { Source } from './source.js';
import { deployEntry, historyScript } from './history.js';

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
  /** The release that was live before this deploy ("" if none). */
  previous: string;
  /** The release live at the end. */
  live: string;
  steps: StepRecord[];
}

export type DeployStatus = 'deployed' | 'failed' | 'rolled back';

export interface DeployReport {
  env: string;
  release: string;
  sha: string;
  branch: string;
  status: DeployStatus;
  /** Why it failed, for a person: the host, the step, its exit code and last lines. */
  error: string | null;
  dump: { host: string; path: string } | null;
  rolledBack: boolean;
  hosts: HostDeployReport[];
  durationMs: number;
}

export interface DeployRequest {
  env: string;
  config: DeployConfig;
  source: Source;
  release: string;
  archive?: Buffer;
  /** The virtualenv a host's release uses (venvs/<key>): same key, environment reused. */
  venvKey: (h: HostDeploy) => string;
  connect: (plan: HostPlan) => Promise<HostSession>;
  forks?: number;
  owner: LockOwner;
  maintenance: boolean;
  signal?: AbortSignal;
  /** Hides secrets in captured output. */
  mask: (s: string) => string;
  onStep?: (host: string, step: StepRecord) => void;
  onPhase?: (phase: string) => void;
}

export async function runDeploy(req: DeployRequest): Promise<DeployReport> {
  const d = new Deploy(req);
  const work = d.run();
  work.catch(() => undefined);
  try {
    return await untilAborted(work, req.signal, (signal) => d.interrupted(signal));
  } finally {
    await d.pool.close((host) => d.lastScript(host));
  }
}

class Deploy {
  readonly pool: HostPool;
  private readonly started = Date.now();
  private readonly hosts: Map<string, HostDeployReport>;
  private dump: DeployReport['dump'] = null;
  /** The virtualenv (its key under venvs/) each host's live release used before the deploy. */
  private readonly liveVenv = new Map<string, string>();
  /** After the switch an interrupt is not obeyed at once: the phase ends, then every host goes back. */
  private switching = false;
  private readonly byName: Map<string, HostDeploy>;
  /** How the run ended, for its line in the deploy history. */
  private ended: { status: DeployStatus | 'interrupted'; error: string | null } | undefined;

  constructor(private readonly req: DeployRequest) {
    this.byName = new Map(req.config.hosts.map((h) => [h.name, h]));
    this.pool = new HostPool((host) => req.connect(this.byName.get(host.name)!.plan), req.forks);
    this.hosts = new Map(req.config.hosts.map((h) => [h.name, { name: h.name, previous: '', live: '', steps: [] }]));
  }

  async run(): Promise<DeployReport> {
    const { config: c } = this.req;
    const all = c.hosts;
    await this.lockAndRead(all);

    if (c.backupHost) {
      const db = parseDatabaseUrl(c.databaseUrl);
      const name = this.req.release;
      const ok = await this.phase('dump', [c.backupHost], (h) => dumpSteps(h, { db, dir: h.backupDir, name, keep: h.backupKeep }));
      if (!ok) return this.end('failed', this.failure('dump', 'no verified dump, so nothing was deployed'));
      this.dump = { host: c.backupHost.name, path: `${c.backupHost.backupDir}/${name}.dump` };
    }
    this.checkStop();
    const built = await this.phase('build', all, (h) =>
      buildSteps(h, {
        id: this.req.release,
        src: this.req.source,
        archive: this.req.archive,
        venvKey: this.req.venvKey(h),
        deployKey: c.deployKey,
        knownHosts: c.knownHosts,
        by: `${this.req.owner.user}@${this.req.owner.controller}`,
      }),
    );
    if (!built) return this.abandon(this.failure('build', 'the old release keeps serving'));
    this.checkStop();
    const web = all.filter((h) => h.web);
    if (this.req.maintenance) await this.phase('maintenance', web, (h) => maintenanceSteps(h, true));
    const migrated = await this.phase('migrate', [c.migrateHost], (h) => migrateSteps(h, this.req.release, c.migrateCommand));
    if (!migrated) {
      return this.abandon(this.failure('migrate', `the old release keeps serving${this.dumpHint()}`));
    }
    this.checkStop();

    this.switching = true;
    const ok =
      (await this.phase('switch', all, (h) => switchSteps(h, this.req.release))) &&
      (await this.phase('reload', all, (h) => reloadSteps(h, this.liveVenv.get(h.name) !== this.req.venvKey(h)))) &&
      (await this.phase('health', all, (h) => healthSteps(h)));
    if (!ok || this.req.signal?.aborted) {
      const why = ok ? 'interrupted' : this.failure(this.lastFailedPhase(), '');
      await this.rollback(why);
      if (this.req.maintenance) await this.phase('maintenance', web, (h) => maintenanceSteps(h, false));
      if (!ok)
        return this.end(
          'rolled back',
          `${why}\nevery host is back on the release it had before (a host that had none runs nothing); ${this.req.release} is marked failed${this.dumpHint()}`,
        );
      throw new InterruptedError(signalName(this.req.signal), ['every host was switched back to its previous release; nothing is left half-released']);
    }
    this.switching = false;
    for (const h of this.hosts.values()) h.live = this.req.release;
    if (this.req.maintenance) await this.phase('maintenance', web, (h) => maintenanceSteps(h, false));
    await this.phase('prune', all, (h) => pruneSteps(h, [this.hosts.get(h.name)!.previous].filter(Boolean)));
    return this.end('deployed', null);
  }

  /** The run's first script on every host: take the lock and read what is live. */
  private async lockAndRead(all: HostDeploy[]): Promise<void> {
    this.req.onPhase?.('lock');
    const outcomes = await this.pool.each(
      all.map((h) => h.plan.host),
      async (s) => {
        const nonce = newNonce();
        const r = await s.runScript(wrap(PRELUDE + acquireSnippet(nonce, this.req.owner) + liveStateSnippet(this.byName.get(s.host)!, nonce)), {
          timeoutMs: 60_000,
        });
        return { lock: parseLockReport(r.stdout, nonce), live: parseLiveState(r.stdout, nonce), r };
      },
    );
    const problems: string[] = [];
    for (const o of outcomes) {
      if (!o.ok) problems.push(`${o.host.name}: ${o.error}`);
      else if (o.value.lock?.kind === 'held') {
        problems.push(
          `${o.host.name} is locked by ${o.value.lock.holder.state === 'stale' ? 'a run that is gone (stale lock): ' : ''}` +
            describeHolder(o.value.lock.holder),
        );
      } else if (o.value.lock?.kind !== 'acquired')
        problems.push(`${o.host.name}: could not take the lock (exit ${o.value.r.code}): ${o.value.r.stderr.trim()}`);
      else {
        const rep = this.hosts.get(o.host.name)!;
        rep.previous = rep.live = o.value.live.live;
        this.liveVenv.set(o.host.name, o.value.live.venv);
      }
    }
    if (problems.length) {
      const locked = problems.some((p) => p.includes(' is locked by '));
      const msg = `${problems.join('\n')}\nnothing was deployed (every host must take part, so that all run one release)`;
      if (locked) {
        throw new LockedError(msg, {
          hint: problems.some((p) => p.includes('stale lock'))
            ? 'a stale lock stays until you clear it: check that no keel run is still working on the host, then `keel lock release <env>`'
            : 'wait for that run to finish (`keel lock status <env>` shows who holds what)',
        });
      }
      throw new LockedError(msg);
    }
  }

  /** Run `steps` on `hosts`; record each step; true if every host passed. */
  private async phase(name: string, hosts: HostDeploy[], steps: (h: HostDeploy) => Step[]): Promise<boolean> {
    if (!hosts.length) return true;
    this.req.onPhase?.(name);
    for (const h of hosts) this.pool.setPhase(h.name, name);
    const outcomes = await this.pool.each(
      hosts.map((h) => h.plan.host),
      (s, host) => {
        const list = steps(this.byName.get(host.name)!);
        return runSteps(s, list, { captureAll: true, timed: true, prefix: assertHeldSnippet(this.req.owner.run_id), mask: this.req.mask });
      },
    );
    let ok = true;
    for (const o of outcomes) {
      const rep = this.hosts.get(o.host.name)!;
      if (!o.ok) {
        ok = false;
        this.record(rep, { phase: name, name: 'connection', status: 'failed', output: o.error });
        continue;
      }
      ok = this.recordRun(rep, name, o.value) && ok;
    }
    return ok;
  }

  private recordRun(rep: HostDeployReport, phase: string, r: StepsRun): boolean {
    for (const st of r.steps) {
      this.record(rep, { phase, name: st.key, status: st.status === 'changed' ? 'ok' : 'failed', durationMs: st.durationMs, code: st.code, output: st.output });
    }
    const failed = r.steps.some((s) => s.status === 'failed');
    if (!failed && r.code !== 0) {
      this.record(rep, { phase, name: r.interruptedKey ?? 'script', status: 'failed', code: r.code ?? undefined, output: r.stderr });
    }
    for (const key of r.notRun) if (key !== r.interruptedKey) this.record(rep, { phase, name: key, status: 'not run' });
    return !failed && r.code === 0;
  }

  private record(rep: HostDeployReport, step: StepRecord): void {
    rep.steps.push(step);
    this.req.onStep?.(rep.name, step);
  }

  /** "migrate failed on web1 (exit 1): <last lines>; then". */
  private failure(phase: string, then: string): string {
    const lines: string[] = [];
    for (const rep of this.hosts.values()) {
      for (const st of rep.steps.filter((s) => s.phase === phase && s.status === 'failed')) {
        // Django and alembic say which migration they were applying: name it.
        const applying = [...(st.output ?? '').matchAll(/Applying ([\w.]+)\.\.\.|Running upgrade \S* ?-> (\w+)/g)].pop();
        const which = applying ? ` while applying ${applying[1] ?? applying[2]}` : '';
        lines.push(
          `${phase} failed on ${rep.name} at ${st.name}${st.code !== undefined ? ` (exit ${st.code})` : ''}${which}:\n${lastLines(st.output ?? '', 12)}`,
        );
      }
    }
    return [...lines, then].filter(Boolean).join('\n');
  }

  private lastFailedPhase(): string {
    for (const p of ['health', 'reload', 'switch']) {
      if ([...this.hosts.values()].some((h) => h.steps.some((s) => s.phase === p && s.status === 'failed'))) return p;
    }
    return 'switch';
  }

  private dumpHint(): string {
    if (!this.dump) return '';
    return `; the dump taken before is ${this.dump.host}:${this.dump.path} (restore it with: keel backup restore ${this.req.env} ${this.dump.path})`;
  }

  /** Before the switch: nothing live changed; the new release is marked failed. */
  private async abandon(error: string): Promise<DeployReport> {
    await this.phase('mark-failed', this.req.config.hosts, (h) => markFailedSteps(h, this.req.release, firstLine(error)));
    if (this.req.maintenance)
      await this.phase(
        'maintenance',
        this.req.config.hosts.filter((h) => h.web),
        (h) => maintenanceSteps(h, false),
      );
    return this.end('failed', error);
  }

  /** After the switch: every host back to its previous release (or stays, if it never had one). */
  private async rollback(why: string): Promise<void> {
    const hosts = this.req.config.hosts;
    const back = hosts.filter((h) => this.hosts.get(h.name)!.previous);
    const none = hosts.filter((h) => !this.hosts.get(h.name)!.previous);
    await this.phase('rollback', hosts, (h) =>
      back.includes(h) ? [...switchSteps(h, this.hosts.get(h.name)!.previous), ...reloadSteps(h, 'auto')] : [...unlinkSteps(h), ...reloadSteps(h, true)],
    );
    await this.phase('rollback-health', back, (h) => healthSteps(h));
    for (const h of none) this.hosts.get(h.name)!.live = '';
    await this.phase('mark-failed', hosts, (h) => markFailedSteps(h, this.req.release, firstLine(why)));
    for (const h of back) this.hosts.get(h.name)!.live = this.hosts.get(h.name)!.previous;
  }

  private checkStop(): void {
    if (this.req.signal?.aborted && !this.switching)
      throw new InterruptedError(signalName(this.req.signal), ['stopped between phases: nothing live was changed; the new release is not switched to']);
  }

  /** SIGINT/SIGTERM: before the switch let go at once; during it finish and switch back. */
  async interrupted(signal: 'SIGINT' | 'SIGTERM'): Promise<Error> {
    this.ended = { status: 'interrupted', error: null };
    if (this.switching) {
      // run() sees the abort after the phase in flight and switches every host back.
      return new Promise<Error>(() => undefined);
    }
    const states = await this.pool.abandon(
      this.req.config.hosts.map((h) => h.name),
      (host) => this.lastScript(host),
    );
    return new InterruptedError(signal, [...interruptLines(states, true), `${this.req.release} was not switched to: the old release keeps serving`]);
  }

  /** The run's last script on a host: its line in the deploy history, then the lock's release. */
  lastScript(host: string): string {
    return historyScript(deployEntry(this.req, this.hosts.get(host), this.ended), this.req.owner.run_id) + releaseScript(this.req.owner.run_id);
  }

  private end(status: DeployStatus, error: string | null): DeployReport {
    const r = this.req;
    this.ended = { status, error };
    return {
      env: r.env,
      release: r.release,
      sha: r.source.sha,
      branch: r.source.branch,
      status,
      error,
      dump: this.dump,
      rolledBack: status === 'rolled back',
      hosts: [...this.hosts.values()],
      durationMs: Date.now() - this.started,
    };
  }
}

function signalName(s: AbortSignal | undefined): 'SIGINT' | 'SIGTERM' {
  return s?.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
}

function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').replace(/:\s*$/, '');
}
