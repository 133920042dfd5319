// keel deploy, across the hosts of an environment, phase by phase. A phase runs on every host
// concerned (one round trip each, over the run's connections); the deploy goes on to the next
// phase only if every host passed it:
//
//   lock (waiting for it with --wait-lock) -> only newer (newer.ts) -> release id free ->
//   dump (verified) -> build -> [maintenance on] -> migrate -> switch (switch.ts: start beside,
//   check, switch traffic, reload, health, retire) -> [maintenance off] -> prune
//
// The code comes with the request: git's archive, with what deploy_local_build made on the
// controller (local-build.ts), built before the lock is asked for.
//
// With deploy_serial the switch goes batch by batch, each batch out of the load balancer while
// it switches (rolling.ts, lb.ts); the load balancers' hosts (role lb) are locked with the others.
// The lock script also reads each host's pg_dump and the server's version: a dump that cannot
// work stops the deploy before the build.
//
// Nothing live changes before the switch: a failure up to the new release's own checks leaves
// the old release serving (the new one is marked failed, and never served a request). From
// the switch on, a failure on any host puts every host back on its previous release.
import { createHash } from 'node:crypto';
import { InterruptedError } from '../errors.js';
import type { HostSession } from '../ssh/types.js';
import type { StepWatcher } from '../engine/steps.js';
import type { HostPlan } from '../engine/plan.js';
import { releaseScript, type LockOwner } from '../engine/lock.js';
import { interruptLines, untilAborted } from '../engine/run.js';
import type { DeployConfig, HostDeploy } from './config.js';
import { parseDatabaseUrl } from './database.js';
import { Phases, phasesFor, type HostDeployReport, type StepRecord } from './phases.js';
import { buildSteps, maintenanceSteps, markFailedSteps, migrateSteps, pruneSteps, releaseFreeSteps } from './scripts.js';
import { dumpMigratedSteps, dumpSteps, pgVersionsSnippet, serverMajor } from './db-scripts.js';
import type { Source } from './source.js';
import type { LocalBuildReport } from './local-build.js';
import { checkNewer } from './newer.js';
import { switchRelease } from './switch.js';
import { deployEntry, historyScript } from './history.js';
import { batchesOf, checkBatches, rollRelease } from './rolling.js';
import { loadBalancer, type LoadBalancer } from './lb.js';

export type { HostDeployReport, StepRecord } from './phases.js';

export type DeployStatus = 'deployed' | 'failed' | 'rolled back';

export interface DeployReport {
  env: string;
  release: string;
  sha: string;
  branch: string;
  status: DeployStatus;
  /** Why it failed, for a person: the host, the step, its exit code and last lines. */
  error: string | null;
  /** What deploy_local_build ran and added to the archive; null without one. */
  localBuild: LocalBuildReport | null;
  /** The archive shipped to the hosts (a local checkout; null for a git URL). */
  archive: { bytes: number; sha256: string } | null;
  dump: { host: string; path: string } | null;
  rolledBack: boolean;
  /** Whether the migration changed the database (it said it applied something). */
  migrated: boolean;
  hosts: HostDeployReport[];
  /** A rolling deploy's batches of web hosts, in order (deploy_serial); null: all at once. */
  batches: string[][] | null;
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
  /** --wait-lock: how long to wait for a lock another run holds (0: fail at once). */
  waitLockMs?: number;
  /** "waiting for <holder>..." */
  onWaitLock?: (line: string) => void;
  /** --allow-older: deploy even a commit the live one already contains. */
  allowOlder?: boolean;
  /** The commit was given with --ref (not the branch's tip). */
  ref?: boolean;
  /** A remark worth a line (what the newer-than-live check could not check). */
  onNote?: (line: string) => void;
  localBuild?: LocalBuildReport;
  signal?: AbortSignal;
  /** Hides secrets in captured output. */
  mask: (s: string) => string;
  onStep?: (host: string, step: StepRecord) => void;
  onPhase?: (phase: string) => void;
  /** Each step's begin, end (and output lines) as they happen on each host. */
  watch?: StepWatcher;
}

export async function runDeploy(req: DeployRequest): Promise<DeployReport> {
  const d = new Deploy(req);
  const work = d.run();
  work.catch(() => undefined);
  try {
    return await untilAborted(work, req.signal, (signal) => d.interrupted(signal));
  } finally {
    await d.phases.pool.close((host) => d.lastScript(host));
  }
}

/** Django and alembic say when a migration applied something. */
const APPLIED = /Applying [\w.]+\.\.\.|Running upgrade /;
/** Django says OK after each migration it completed; the others roll back on PostgreSQL (and
 *  alembic runs the whole upgrade in one transaction by default). */
const COMPLETED = /Applying [\w.]+\.\.\. OK/;
/** Alembic when the database has a revision this code does not know (it was migrated by a
 *  newer release, then rolled back). */
const DATABASE_AHEAD = /Can't locate revision identified by '(\w+)'/;

class Deploy {
  readonly phases: Phases;
  private readonly started = Date.now();
  private dump: DeployReport['dump'] = null;
  private readonly archive: DeployReport['archive'];
  private migrateOk = false;
  /** From the first start of a new slot on, an interrupt is not obeyed at once: the phase
   *  ends, then what was started is stopped (or every host goes back). */
  private switching = false;
  /** How the run ended, for its line in the deploy history. */
  private ended: { status: DeployStatus | 'interrupted'; error: string | null } | undefined;

  /** deploy_serial's batches (rolling.ts), or null: every host at once. */
  private readonly batches: HostDeploy[][] | null;
  private readonly lb: LoadBalancer;

  constructor(private readonly req: DeployRequest) {
    const c = req.config;
    this.archive = req.archive ? { bytes: req.archive.length, sha256: createHash('sha256').update(req.archive).digest('hex') } : null;
    this.batches = c.serial !== undefined && c.hosts.some((h) => h.appctl) ? batchesOf(c.hosts, c.serial) : null;
    if (this.batches) checkBatches(this.batches, c.lbHosts, c.serial!);
    this.phases = phasesFor(req, req.config.hosts, c.lbHosts);
    this.lb = loadBalancer({
      phases: this.phases,
      lbHosts: c.lbHosts,
      hook: (h, verb) => (verb === 'drain' ? h.lbDrain : h.lbRestore),
      hookTimeoutMs: c.lbHookTimeoutMs,
      env: { KEEL_ENV: req.env, KEEL_RELEASE: req.release },
      mask: req.mask,
    });
  }

  async run(): Promise<DeployReport> {
    const { config: c } = this.req;
    const p = this.phases;
    const all = c.hosts;
    const db = c.backupHost ? parseDatabaseUrl(c.databaseUrl) : undefined;
    // Each host's pg_dump, and the server's version, read with the lock: a dump that cannot
    // work fails here, before anything is built.
    await p.lockAndRead(
      'deployed',
      { ms: this.req.waitLockMs ?? 0, onWait: this.req.onWaitLock, signal: this.req.signal },
      db ? (h, nonce) => pgVersionsSnippet(nonce, h === c.backupHost ? db : undefined) : undefined,
    );
    const live = all.map((h) => ({ host: h.name, release: p.before(h).live, sha: p.before(h).sha }));
    const note = await checkNewer(this.req.source, live, { env: this.req.env, allowOlder: !!this.req.allowOlder, ref: !!this.req.ref });
    if (note) this.req.onNote?.(note);
    if (!(await p.phase('release-id', all, (h) => releaseFreeSteps(h, this.req.release)))) {
      const why = p.failure('release-id');
      const same = /exists already/.test(why)
        ? `\na deploy of the same commit started in the same second as this one, and has its release id (${this.req.release}); deploy again for a new one`
        : '';
      return this.end('failed', `${why}${same}\nnothing was deployed`);
    }

    if (c.backupHost && db) {
      const mismatch = this.pgDumpTooOld(c.backupHost);
      if (mismatch) return this.end('failed', mismatch);
      const name = this.req.release;
      const ok = await p.phase('dump', [c.backupHost], (h) => dumpSteps(h, { db, dir: h.backupDir, name, keep: h.backupKeep }));
      if (!ok) return this.end('failed', `${p.failure('dump')}\nno verified dump, so nothing was deployed`);
      this.dump = { host: c.backupHost.name, path: `${c.backupHost.backupDir}/${name}.dump` };
    }
    this.checkStop();
    const built = await p.phase('build', all, (h) =>
      buildSteps(h, {
        id: this.req.release,
        src: this.req.source,
        archive: this.req.archive,
        archiveSha256: this.archive?.sha256,
        venvKey: this.req.venvKey(h),
        deployKey: c.deployKey,
        knownHosts: c.knownHosts,
        by: this.req.owner.by || `${this.req.owner.user}@${this.req.owner.controller}`,
      }),
    );
    if (!built) return this.abandon(`${p.failure('build')}\n${this.oldServes()}`);
    this.checkStop();
    const web = all.filter((h) => h.web);
    if (this.req.maintenance) await p.phase('maintenance', web, (h) => maintenanceSteps(h, true));
    this.migrateOk = await p.phase('migrate', [c.migrateHost], (h) => migrateSteps(h, this.req.release, c.migrateCommand));
    // The dump is the state to go back to after this migration: retention keeps it.
    if (c.backupHost && this.migrationChanged()) {
      await p.phase('dump-migrated', [c.backupHost], (h) => dumpMigratedSteps({ dir: h.backupDir, name: this.req.release }, this.req.release));
    }
    if (!this.migrateOk)
      return this.abandon(`${p.failure('migrate')}\n${this.oldServes()}${this.aheadHint()}${this.dumpHint('the migrations that completed')}`);
    this.checkStop();

    this.switching = true;
    const sw = { phases: p, hosts: all, to: this.req.release, maintenance: this.req.maintenance, signal: this.req.signal };
    const out = this.batches ? await rollRelease({ ...sw, batches: this.batches, lb: this.lb }) : await switchRelease(sw);
    // A host that joined a load balancer's group waits drained until it runs the release.
    if (out.status === 'switched' && !this.batches) await this.lb.restoreWaiting(web);
    this.switching = false;
    if (out.status === 'not switched') {
      if (this.req.signal?.aborted) {
        await this.markFailed('interrupted before it got traffic');
        await this.maintenanceOff();
        throw new InterruptedError(signalName(this.req.signal), [`${this.req.release} was stopped before it got any traffic: ${this.oldServes()}`]);
      }
      if (out.phase === 'drain') {
        return this.abandon(
          `${p.failure('drain')}\nthe load balancer could not take the first batch out: ${this.req.release} got no traffic, ${this.oldServes()}` +
            this.dumpHint('its migration'),
        );
      }
      return this.abandon(
        `${p.failure(['start', 'check'])}\n${this.req.release} failed its checks before it got any traffic: ` +
          `${this.oldServes()}${this.dumpHint('its migration')}`,
      );
    }
    if (out.status === 'switched back') {
      const why = this.req.signal?.aborted ? 'interrupted' : p.failure(out.phase);
      await this.markFailed(why.split('\n')[0]!);
      await this.maintenanceOff();
      const where = this.whereHostsAre(out.backOk);
      if (this.req.signal?.aborted) throw new InterruptedError(signalName(this.req.signal), [where]);
      return this.end('rolled back', `${why}\n${where}; ${this.req.release} is marked failed${this.dumpHint('its migration')}`);
    }
    await this.maintenanceOff();
    await p.phase('prune', all, (h) => pruneSteps(h, [p.before(h).live].filter(Boolean)));
    return this.end('deployed', null);
  }

  /** pg_dump cannot dump a server newer than itself: say so before anything is built, and
   *  where a dump would work. Null when it can (or when the server could not be asked: the
   *  dump step says why). */
  private pgDumpTooOld(backup: HostDeploy): string | null {
    const p = this.phases;
    const server = serverMajor(p.lockRead(backup, 'pg_server') ?? '');
    if (server === undefined) return null;
    const client = (h: HostDeploy) => Number(p.lockRead(h, 'pg_dump') || 0);
    if (client(backup) >= server) return null;
    const able = this.req.config.hosts.filter((h) => client(h) >= server).map((h) => `${h.name} (pg_dump ${client(h)})`);
    const has = client(backup) ? `pg_dump ${client(backup)}` : 'no pg_dump';
    const hint = able.length
      ? `dump where the client can: set deploy_backup_host to ${able.join(' or ')}`
      : `install postgresql-client-${server} on ${backup.name} (Debian 12 has 15 only: PGDG's apt repository, apt.postgresql.org, has newer ones), ` +
        'or give the database host role deploy (its own pg_dump matches its server, and it then takes the dump)';
    return (
      `${backup.name}, which takes the dump (${this.req.config.backupHostWhy}), has ${has}; the database server is PostgreSQL ${server}: ` +
      `pg_dump cannot dump a server newer than itself\nnothing was deployed\nhint: ${hint}`
    );
  }

  /** What the hosts run after a switch back, as far as each one said. */
  private whereHostsAre(backOk: boolean): string {
    const unknown = this.phases.unknownHosts();
    if (unknown.length) return unknown.join('\n');
    return backOk
      ? 'every host is back on the release it had before (a host that had none runs nothing)'
      : 'every host is back on the release it had before, but not every one passed its health check after it: see above';
  }

  /** Where the dump is, when a restore could make sense: only once a migration changed the
   *  database, and saying what a restore would lose. */
  private dumpHint(what: string): string {
    if (!this.dump || !this.migrationChanged()) return '';
    const path = `${this.dump.host}:${this.dump.path}`;
    return (
      `\n${what} changed the database; the dump taken just before is ${path}. ` +
      'If the old release cannot work with the new schema, restore it (everything written since the dump is lost): ' +
      `keel backup restore ${this.req.env} ${this.dump.path}`
    );
  }

  /** What still serves after a failure before the switch. */
  private oldServes(): string {
    return this.req.config.hosts.some((h) => this.phases.before(h).live) ? 'the old release keeps serving' : 'nothing was live before, and nothing is now';
  }

  private migrationChanged(): boolean {
    return !!this.phases.said('migrate', this.migrateOk ? APPLIED : COMPLETED);
  }

  private aheadHint(): string {
    const ahead = this.phases.said('migrate', DATABASE_AHEAD);
    if (!ahead) return '';
    return (
      `\nthe database is ahead of this code: it was migrated by a newer release (then rolled back) to revision ${ahead[1]}, which this one does not have. ` +
      'Deploy a branch that has that migration, or restore the dump taken before it (keel backups lists them)'
    );
  }

  /** Before the switch: nothing live changed; the new release is marked failed. */
  private async abandon(error: string): Promise<DeployReport> {
    await this.markFailed(error.split('\n')[0]!);
    await this.maintenanceOff();
    return this.end('failed', error);
  }

  private markFailed(reason: string): Promise<boolean> {
    return this.phases.phase('mark-failed', this.req.config.hosts, (h) => markFailedSteps(h, this.req.release, reason.replace(/:\s*$/, '')));
  }

  private async maintenanceOff(): Promise<void> {
    if (this.req.maintenance)
      await this.phases.phase(
        'maintenance',
        this.req.config.hosts.filter((h) => h.web),
        (h) => maintenanceSteps(h, false),
      );
  }

  private checkStop(): void {
    if (this.req.signal?.aborted && !this.switching)
      throw new InterruptedError(signalName(this.req.signal), ['stopped between phases: nothing live was changed; the new release is not switched to']);
  }

  /** SIGINT/SIGTERM: before the switch let go at once; during it finish and clean up. */
  async interrupted(signal: 'SIGINT' | 'SIGTERM'): Promise<Error> {
    this.ended = { status: 'interrupted', error: null };
    if (this.switching) {
      // run() sees the abort after the phase (or wait round) in flight and cleans up.
      return new Promise<Error>(() => undefined);
    }
    const states = await this.phases.pool.abandon(
      this.req.config.hosts.map((h) => h.name),
      (host) => this.lastScript(host),
    );
    return new InterruptedError(signal, [...interruptLines(states, true), `${this.req.release} was not switched to: the old release keeps serving`]);
  }

  /** The run's last script on a host: its line in the deploy history, then the lock's release. */
  lastScript(host: string): string {
    const rep = this.phases.reports.get(host);
    const seen = rep && { name: rep.name, previous: rep.previous, live: rep.live ?? 'unknown' };
    return historyScript(deployEntry(this.req, seen, this.ended), this.req.owner.run_id) + releaseScript(this.req.owner.run_id);
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
      localBuild: r.localBuild ?? null,
      archive: this.archive,
      dump: this.dump,
      rolledBack: status === 'rolled back',
      migrated: this.migrationChanged(),
      hosts: [...this.phases.reports.values()],
      batches: this.batches?.map((b) => b.map((h) => h.name)) ?? null,
      durationMs: Date.now() - this.started,
    };
  }
}

function signalName(s: AbortSignal | undefined): 'SIGINT' | 'SIGTERM' {
  return s?.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
}
