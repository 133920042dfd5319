// keel deploy <env> --catch-up: a host that joined (an autoscaling group's new instance, a
// rebuilt server) gets the release the others run, without a deploy of everything:
//
//   read      every host's live release, without the lock (a host held by a deploy: refused)
//   lock      only the hosts that have no release, and the load balancers in front of them
//   build     the live release, from its commit (the same id, branch and virtualenv key)
//   switch    start + check beside nothing, switch, reload, health (switch.ts)
//   restore   the load balancer sends them requests (they joined it drained: role lb)
//
// No dump and no migration: the database is at that release already. The others are not
// touched nor locked, so the lock is held only by the hosts that change.
import { createHash } from 'node:crypto';
import { KeelError } from '../errors.js';
import type { HostPlan } from '../engine/plan.js';
import type { HostSession } from '../ssh/types.js';
import type { StepWatcher } from '../engine/steps.js';
import { HostPool } from '../engine/pool.js';
import { describeHolder, parseLockReport, peekSnippet, releaseScript, type LockOwner } from '../engine/lock.js';
import { PRELUDE, newNonce, wrap } from '../engine/script-parts.js';
import { sh } from '../shell/quote.js';
import { deployEntry, historyScript } from './history.js';
import type { DeployConfig, HostDeploy } from './config.js';
import { loadBalancer } from './lb.js';
import { phasesFor, type StepRecord } from './phases.js';
import type { DeployReport } from './run.js';
import { buildSteps, liveStateSnippet, markFailedSteps, parseLiveState, pruneSteps } from './scripts.js';
import type { Source } from './source.js';
import { switchRelease } from './switch.js';

export interface CatchUpRequest {
  env: string;
  config: DeployConfig;
  connect: (plan: HostPlan) => Promise<HostSession>;
  forks?: number;
  owner: LockOwner;
  mask: (s: string) => string;
  /** The commit of the live release, as the controller finds it (a local checkout's archive). */
  source: (live: LiveRelease) => Promise<{ source: Source; archive?: Buffer }>;
  onStep?: (host: string, step: StepRecord) => void;
  onPhase?: (phase: string) => void;
  watch?: StepWatcher;
  signal?: AbortSignal;
}

/** What the hosts that have a release run (they must agree). */
export interface LiveRelease {
  id: string;
  sha: string;
  branch: string;
  venv: string;
  /** The hosts that run it. */
  on: string[];
}

export interface CatchUpPlan {
  live: LiveRelease | null;
  /** Hosts without a release: they get `live`. */
  behind: HostDeploy[];
}

/** Every host's live release and release info, read without the lock; a host another run holds
 *  stops it (a deploy in progress moves the release the others run). */
export async function readFleet(req: Pick<CatchUpRequest, 'config' | 'connect' | 'forks'>): Promise<CatchUpPlan> {
  const hosts = req.config.hosts;
  const pool = new HostPool((host) => req.connect(hosts.find((h) => h.name === host.name)!.plan), req.forks);
  try {
    const outcomes = await pool.each(
      hosts.map((h) => h.plan.host),
      async (s, host) => {
        const h = hosts.find((x) => x.name === host.name)!;
        const nonce = newNonce();
        const info = sh`printf '%s branch %s\\n' ${nonce} "$(sed -n 's/^branch=//p' ${h.appRoot + '/current/.keel-release'} 2>/dev/null)"`;
        const r = await s.runScript(wrap(PRELUDE + peekSnippet(nonce) + liveStateSnippet(h, nonce) + info.text + '\n'), { timeoutMs: 60_000 });
        const branch = new RegExp(`^${nonce} branch (.*)$`, 'm').exec(r.stdout)?.[1]?.trim() ?? '';
        return { live: parseLiveState(r.stdout, nonce), lock: parseLockReport(r.stdout, nonce), branch };
      },
    );
    const problems = outcomes.flatMap((o) =>
      !o.ok ? [`${o.host.name}: ${o.error}`] : o.value.lock?.kind === 'held' ? [`${o.host.name} is locked by ${describeHolder(o.value.lock.holder)}`] : [],
    );
    if (problems.length) throw new KeelError(`${problems.join('\n')}\nnothing was caught up (the release the others run must be known and stay put)`);
    const read = outcomes.map((o) => ({
      host: hosts.find((h) => h.name === o.host.name)!,
      ...(o as { value: { live: ReturnType<typeof parseLiveState>; branch: string } }).value,
    }));
    const withRelease = read.filter((r) => r.live.live);
    const ids = [...new Set(withRelease.map((r) => r.live.live))];
    if (ids.length > 1) {
      const runs = ids.map(
        (id) =>
          `${id} on ${withRelease
            .filter((r) => r.live.live === id)
            .map((r) => r.host.name)
            .join(', ')}`,
      );
      throw new KeelError(`the hosts run different releases: ${runs.join('; ')}: there is no one release to catch up to`, {
        hint: 'keel deploy <env> --branch <b> puts one release on every host (keel rollback <env> --to <release> one they have)',
      });
    }
    const first = withRelease[0];
    const live = first
      ? { id: first.live.live, sha: first.live.sha, branch: first.branch, venv: first.live.venv, on: withRelease.map((r) => r.host.name) }
      : null;
    return { live, behind: read.filter((r) => !r.live.live).map((r) => r.host) };
  } finally {
    await pool.close();
  }
}

/** Put `plan.live` on `plan.behind` (see above). */
export async function runCatchUp(req: CatchUpRequest, plan: CatchUpPlan & { live: LiveRelease }): Promise<DeployReport> {
  const started = Date.now();
  const c = req.config;
  const hosts = plan.behind;
  const lbHosts = c.lbHosts.filter((lb) => hosts.some((h) => lb.members.includes(h.name)));
  const p = phasesFor(req, hosts, lbHosts);
  const { source, archive } = await req.source(plan.live);
  const id = plan.live.id;
  let ended: { status: string; error: string | null } | undefined;
  const end = (status: DeployReport['status'], error: string | null): DeployReport => {
    ended = { status, error };
    return {
      env: req.env,
      release: id,
      sha: source.sha,
      branch: source.branch,
      status,
      error,
      dump: null,
      rolledBack: status === 'rolled back',
      migrated: false,
      hosts: [...p.reports.values()],
      batches: null,
      archive: archive ? { bytes: archive.length, sha256: createHash('sha256').update(archive).digest('hex') } : null,
      localBuild: null,
      durationMs: Date.now() - started,
    };
  };
  try {
    await p.lockAndRead('caught up');
    // A host that got a release since it was read (another run): nothing to do on it.
    const got = hosts.filter((h) => p.before(h).live);
    if (got.length) throw new KeelError(`${got.map((h) => `${h.name} runs ${p.before(h).live}`).join(', ')} now: it was caught up by another run`);
    const by = `${req.owner.user}@${req.owner.controller}`;
    const built = await p.phase('build', hosts, (h) =>
      buildSteps(h, { id, src: source, archive, venvKey: plan.live.venv, deployKey: c.deployKey, knownHosts: c.knownHosts, by }),
    );
    if (!built) {
      await p.phase('mark-failed', hosts, (h) => markFailedSteps(h, id, 'its catch-up build failed'));
      return end('failed', `${p.failure('build')}\nnothing was switched: ${hosts.map((h) => h.name).join(', ')} still run nothing`);
    }
    const out = await switchRelease({ phases: p, hosts, to: id, maintenance: false, signal: req.signal });
    if (out.status !== 'switched') {
      const why = p.failure(out.status === 'not switched' ? ['start', 'check'] : out.phase);
      return end(out.status === 'not switched' ? 'failed' : 'rolled back', `${why}\n${hosts.map((h) => h.name).join(', ')} run nothing, as before`);
    }
    // They joined their load balancer drained (role lb): in service now. A cloud one's hook too.
    const lb = loadBalancer({
      phases: p,
      lbHosts,
      hook: (h, verb) => (verb === 'drain' ? h.lbDrain : h.lbRestore),
      hookTimeoutMs: c.lbHookTimeoutMs,
      env: { KEEL_ENV: req.env, KEEL_RELEASE: id },
      mask: req.mask,
    });
    const web = hosts.filter((h) => h.web);
    if (web.length && lb.balances(web) && !(await lb.restore(web))) {
      return end('failed', `${p.failure('restore')}\n${web.map((h) => h.name).join(', ')} run ${id} but the load balancer does not send them requests yet`);
    }
    await p.phase('prune', hosts, (h) => pruneSteps(h, []));
    return end('deployed', null);
  } finally {
    // Each host's line in the deploy history (keel history), then the lock's release.
    const entry = { owner: req.owner, release: id, source, config: c, mask: req.mask };
    await p.pool.close((host) => {
      const rep = p.reports.get(host);
      const seen = rep && { name: rep.name, previous: rep.previous, live: rep.live ?? 'unknown' };
      return historyScript(deployEntry(entry, seen, ended), req.owner.run_id) + releaseScript(req.owner.run_id);
    });
  }
}
