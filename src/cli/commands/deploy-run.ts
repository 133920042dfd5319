// What keel deploy, rollback, releases, maintenance, backup(s) do: prepare (the same pipeline
// as provision: inventory, vault, roles), read the deploy settings, run on the hosts, report.
import { ConfigError, InterruptedError, KeelError, lastLines } from '../../errors.js';
import { EXIT_UNKNOWN } from '../exit.js';
import type { PreparedRun } from '../../engine/pipeline.js';
import { preconnect, sshConnector } from '../../engine/connector.js';
import { newLockOwner, peekSnippet, parseLockReport, describeHolder } from '../../engine/lock.js';
import { HostPool } from '../../engine/pool.js';
import { PRELUDE, newNonce, wrap } from '../../engine/script-parts.js';
import { deployConfig, type DeployConfig, type HostDeploy } from '../../deploy/config.js';
import { parseDatabaseUrl } from '../../deploy/database.js';
import { runDeploy, type DeployReport, type StepRecord } from '../../deploy/run.js';
import { readFleet, runCatchUp } from '../../deploy/catch-up.js';
import { liveStateSnippet, lsRemoteScript, parseLiveState } from '../../deploy/scripts.js';
import { changedFiles, fileAt, isGitUrl, releaseId, resolveLocal, urlSource, venvKey, type Source } from '../../deploy/source.js';
import * as ops from '../../deploy/ops.js';
import { releaseArchive } from '../../deploy/local-build.js';
import { Notifier, deployEnd, firstLine, runContext, withNotices, type Delivery, type NoticeBase } from '../../deploy/notify.js';
import { RunLog } from '../../report/log.js';
import { deployJson } from '../../report/json.js';
import { DeploySteps } from '../../report/deploy-steps.js';
import type { CliContext } from '../context.js';
import { prepareFromOptions } from '../prepare.js';
import { confirm } from '../confirm.js';
import { checkOutput, describeCommand, type HostOptions } from '../options.js';
import { trapSignals } from '../signals.js';
import type { DeployOptions } from './deploy.js';

interface Prepared {
  prepared: PreparedRun;
  config: DeployConfig;
  ctx: ops.OpsContext;
}

async function prepare(ctx: CliContext, env: string, o: HostOptions, change?: { verb: string; allowSplit?: boolean }): Promise<Prepared> {
  const prepared = await prepareFromOptions(ctx, env, o);
  const config = deployConfig(prepared.plans, prepared.inventory.file, prepared.inventory.hosts);
  if (change && !change.allowSplit) refuseSplit(prepared, config, change.verb);
  // The database password alone (not only the whole URL) is a secret too.
  if (config.databaseUrl) {
    try {
      const pw = parseDatabaseUrl(config.databaseUrl).password;
      if (pw) ctx.out.redactor.add([pw, encodeURIComponent(pw)]);
    } catch {
      // reported when a dump needs it
    }
  }
  if (config.deployKey) ctx.out.redactor.add([config.deployKey.trim()]);
  const connect = sshConnector(prepared, { acceptNewHostKeys: o.acceptNewHostKeys, onNewHostKey: (m) => ctx.out.warn(m) });
  return { prepared, config, ctx: { config, connect, forks: o.forks, mask: (s) => ctx.out.redactor.mask(s) } };
}

/** Web and workers on different releases is what keel deploy exists to prevent: a --limit that
 *  leaves out some of the hosts that run the app is refused unless the user says so. */
function refuseSplit(prepared: PreparedRun, config: DeployConfig, verb: string): void {
  const inRun = new Set(config.hosts.map((h) => h.name));
  const left = prepared.inventory.hosts.filter((h) => h.roles.includes('deploy') && !inRun.has(h.name)).map((h) => h.name);
  if (!left.length) return;
  throw new ConfigError(
    `--limit leaves out ${left.join(', ')}, which run${left.length === 1 ? 's' : ''} the app too (role deploy): ` +
      `${[...inRun].join(', ')} would ${verb}, ${left.join(', ')} would stay on the release ${left.length === 1 ? 'it runs' : 'they run'} now ` +
      '(keel releases shows which): web and workers would run different releases',
    { file: prepared.inventory.file },
    { hint: `${verb} every host that runs the app (no --limit), or say that you want the split with --allow-split` },
  );
}

export async function deploy(ctx: CliContext, env: string, o: DeployOptions): Promise<number> {
  const json = checkOutput(o);
  if (o.catchUp) {
    if (o.branch || o.ref || o.maintenance || o.check)
      throw new ConfigError('--catch-up puts the live release on new hosts: it takes no --branch, --ref, --maintenance or --check');
    return catchUp(ctx, env, o, json);
  }
  if (!o.branch) throw new ConfigError('keel deploy needs --branch <branch> (or --catch-up: the release the others run, on new hosts)');
  const p = await prepare(ctx, env, o, o.check ? undefined : { verb: 'move to the new release', allowSplit: o.allowSplit });
  const { config } = p;
  const source = await resolveSource(ctx, p, o.branch, o.ref);
  const release = releaseId(source.sha);
  // app_requirements "" is "no requirements": the same environment for every commit.
  const reqFile = config.migrateHost.requirements;
  const requirements = source.kind === 'local' && reqFile ? await fileAt(source, reqFile) : null;
  // A git URL: the requirements are not read here, so each commit gets its own environment.
  const keyOf = (h: HostDeploy) => venvKey(source.kind === 'local' || !reqFile ? requirements : `url:${source.sha}`, h.python, h.pipIndexUrl, h.wheelhouse);
  if (o.check) return deployCheck(ctx, p, source, release, keyOf, json);

  const hostNames = config.hosts.map((h) => h.name).join(', ');
  if (!o.yes && ctx.interactive && !json && process.stdout.isTTY) {
    if (
      !(await confirm(
        `Deploy ${source.branch} (${source.sha.slice(0, 12)}) from ${describeSource(source)} to ${config.hosts.length} host(s) of ${env} (${hostNames})?`,
      ))
    ) {
      ctx.out.warn('aborted: nothing was run.');
      return 0;
    }
  }
  const run = runContext();
  const owner = newLockOwner(describeCommand('deploy', env, o, ['--branch', source.branch]), {
    branch: source.branch,
    release,
    // In CI: who started the job, and the job (the lock shows them to whoever waits for it).
    ...(run.url ? { by: run.who, ci: run.url } : {}),
  });
  const log = new RunLog(ctx.root, 'deploy', env, ctx.out.redactor);
  log.write('start', { env, release, sha: source.sha, branch: source.branch, hosts: config.hosts.map((h) => h.name) });
  // With --output json, stdout is the report alone: the steps go to stderr (a CI log shows them).
  const say = json ? (l: string) => ctx.out.warn(l) : (l: string) => ctx.out.line(l);
  say(`deploy ${source.branch} @ ${source.sha.slice(0, 12)} from ${describeSource(source)} as ${release} to ${hostNames}`);
  const trap = trapSignals(ctx.out, ctx.signal);
  // Each step printed and logged as it ends on its host; with -v its output lines as they come.
  const steps = new DeploySteps({ log, out: ctx.out, say, verbose: !!o.verbose, print: (host, st) => printStep(say, host, st, !!o.verbose) });
  const notifier = new Notifier(config.notify, { mask: p.ctx.mask, warn: (l) => ctx.out.warn(l) });
  const ahead = preconnect(p.ctx.connect);
  const base: NoticeBase = {
    command: 'deploy',
    env,
    branch: source.branch,
    sha: source.sha,
    release,
    who: run.who,
    url: run.url,
    hosts: config.hosts.map((h) => h.name),
  };
  try {
    const report = await withNotices(
      notifier,
      base,
      async () => {
        // The hosts are reached before the local build: a missing key fails now, not after it.
        if (config.localBuild.commands.length) await ahead.open(config.hosts.map((h) => h.plan));
        const code =
          source.kind === 'local'
            ? await releaseArchive(source, config.localBuild, {
                env,
                release,
                mask: p.ctx.mask,
                signal: trap.signal,
                onStep: (st) => steps.recorded('controller', st),
                onLine: o.verbose ? (step, line) => say(`controller  local-build/${step} | ${line}`) : undefined,
              })
            : undefined;
        return runDeploy({
          env,
          config,
          source,
          release,
          archive: code?.archive,
          localBuild: code?.report,
          venvKey: keyOf,
          connect: ahead.connect,
          forks: o.forks,
          owner,
          maintenance: !!o.maintenance,
          waitLockMs: o.waitLock,
          onWaitLock: (line) => {
            log.write('lock-wait', { line });
            ctx.out.warn(line);
          },
          allowOlder: !!o.allowOlder,
          ref: !!o.ref,
          onNote: (line) => ctx.out.warn(`note: ${line}`),
          signal: trap.signal,
          mask: p.ctx.mask,
          onPhase: (phase) => log.write('phase', { phase }),
          watch: steps,
          onStep: (host, st) => steps.recorded(host, st),
        });
      },
      deployEnd,
    );
    const notifications = await notifier.settle();
    log.write('end', { status: report.status, error: report.error, dump: report.dump, durationMs: report.durationMs });
    return showDeploy(ctx, report, json, notifications);
  } catch (err) {
    log.aborted(err);
    throw err;
  } finally {
    await ahead.close();
    steps.close();
    trap.dispose();
    log.close();
  }
}

/** The report, printed or as JSON; the exit code: 0 deployed, 2 failed or rolled back, 3 a host's
 *  state is unknown. */
function showDeploy(ctx: CliContext, report: DeployReport, json: boolean, notifications: Delivery[] = []): number {
  if (json) ctx.out.json(deployJson(report, notifications));
  else printDeploy(ctx, report);
  if (report.hosts.some((h) => h.live === null)) return EXIT_UNKNOWN;
  return report.status === 'deployed' ? 0 : 2;
}

/** Where the shipped code comes from, said before anything happens. */
function describeSource(s: Source): string {
  return `${s.repo}${s.subdir ? ` (${s.subdir}/)` : ''}`;
}

/** --catch-up: the hosts without a release get the one the others run (deploy/catch-up.ts). */
async function catchUp(ctx: CliContext, env: string, o: DeployOptions, json: boolean): Promise<number> {
  const p = await prepare(ctx, env, o);
  const { config } = p;
  const fleet = await readFleet({ config, connect: p.ctx.connect, forks: o.forks });
  if (!fleet.live) throw new KeelError('no host runs a release yet: there is nothing to catch up to', { hint: `keel deploy ${env} --branch <branch>` });
  if (!fleet.behind.length) {
    if (json) ctx.out.json({ env, release: fleet.live.id, status: 'up to date', hosts: [] });
    else ctx.out.line(`every host runs ${fleet.live.id} already: nothing to catch up`);
    return 0;
  }
  const live = fleet.live;
  const names = fleet.behind.map((h) => h.name).join(', ');
  if (!o.yes && ctx.interactive && !json && process.stdout.isTTY) {
    if (!(await confirm(`Put ${live.id} (live on ${live.on.join(', ')}) on ${names}?`))) return 0;
  }
  const owner = newLockOwner(describeCommand('deploy', env, o, ['--catch-up']), { release: live.id });
  const log = new RunLog(ctx.root, 'deploy', env, ctx.out.redactor);
  log.write('start', { env, catchUp: true, release: live.id, hosts: fleet.behind.map((h) => h.name) });
  if (!json) ctx.out.line(`catch up ${names} to ${live.id} (${live.branch} @ ${live.sha.slice(0, 12)}, live on ${live.on.join(', ')})`);
  const trap = trapSignals(ctx.out, ctx.signal);
  const say = json ? (l: string) => ctx.out.warn(l) : (l: string) => ctx.out.line(l);
  const steps = new DeploySteps({ log, out: ctx.out, say, verbose: !!o.verbose, print: (host, st) => printStep(say, host, st, !!o.verbose) });
  try {
    const report = await runCatchUp(
      {
        env,
        config,
        connect: p.ctx.connect,
        forks: o.forks,
        owner,
        mask: p.ctx.mask,
        signal: trap.signal,
        onPhase: (phase) => log.write('phase', { phase }),
        watch: steps,
        onStep: (host, st) => steps.recorded(host, st),
        // The live release's own commit: its branch may have moved on since.
        source: async (l) => {
          const source = await resolveSource(ctx, p, l.branch || 'HEAD', l.sha);
          if (source.kind !== 'local') return { source };
          // deploy_local_build's outputs are part of the release: made again from its commit.
          const code = await releaseArchive(source, config.localBuild, {
            env,
            release: live.id,
            mask: p.ctx.mask,
            signal: trap.signal,
            onStep: (st) => steps.recorded('controller', st),
          });
          return { source, archive: code.archive };
        },
      },
      { ...fleet, live },
    );
    log.write('end', { status: report.status, error: report.error, durationMs: report.durationMs });
    return showDeploy(ctx, report, json);
  } catch (err) {
    log.aborted(err);
    throw err;
  } finally {
    steps.close();
    trap.dispose();
    log.close();
  }
}

async function resolveSource(ctx: CliContext, p: Prepared, branch: string, ref: string | undefined): Promise<Source> {
  const c = p.config;
  if (!isGitUrl(c.repo)) return resolveLocal(ctx.root, c.repo, branch, ref, c.subdir);
  const src = urlSource(c.repo, branch, ref, c.subdir);
  if (src.sha) return src;
  // The branch's commit, asked once (from the migrate host, which can reach the git server).
  const pool = new HostPool((host) => p.ctx.connect(c.hosts.find((h) => h.name === host.name)!.plan), 1);
  try {
    const [r] = await pool.each([c.migrateHost.plan.host], (s) =>
      s.runScript(wrap(PRELUDE + lsRemoteScript(c.migrateHost, src, c.deployKey, c.knownHosts)), { timeoutMs: 120_000 }),
    );
    if (!r!.ok) throw new KeelError(r!.error);
    const sha = /^([0-9a-f]{40})\s/m.exec(r!.value.stdout)?.[1];
    if (!sha) {
      throw new ConfigError(
        `--branch ${branch}: ${c.migrateHost.name} could not find it in ${c.repo} (exit ${r!.value.code}):\n${lastLines(p.ctx.mask(r!.value.stderr), 8)}`,
        undefined,
        {
          hint: "check the branch, deploy_key (read access to the repository) and deploy_known_hosts (the git server's key)",
        },
      );
    }
    return { ...src, sha };
  } finally {
    await pool.close();
  }
}

/** --check: what a deploy would do, read from the hosts without the lock, changing nothing. */
async function deployCheck(ctx: CliContext, p: Prepared, source: Source, release: string, keyOf: (h: HostDeploy) => string, json: boolean): Promise<number> {
  const pool = new HostPool((host) => p.ctx.connect(p.config.hosts.find((h) => h.name === host.name)!.plan), p.ctx.forks);
  try {
    const outcomes = await pool.each(
      p.config.hosts.map((h) => h.plan.host),
      async (s, host) => {
        const h = p.config.hosts.find((x) => x.name === host.name)!;
        const nonce = newNonce();
        const r = await s.runScript(wrap(PRELUDE + peekSnippet(nonce) + liveStateSnippet(h, nonce)), { timeoutMs: 60_000 });
        return { live: parseLiveState(r.stdout, nonce), lock: parseLockReport(r.stdout, nonce), venvKey: keyOf(h) };
      },
    );
    const hosts = outcomes.map((o) =>
      o.ok
        ? {
            name: o.host.name,
            live: o.value.live.live || null,
            liveSha: o.value.live.sha || null,
            requirementsChanged: o.value.live.venv !== o.value.venvKey,
            lockedBy: o.value.lock?.kind === 'held' ? describeHolder(o.value.lock.holder) : null,
          }
        : { name: o.host.name, error: o.error },
    );
    const liveSha = hosts.map((h) => ('liveSha' in h ? h.liveSha : null)).find(Boolean) ?? null;
    const changed = liveSha && source.kind === 'local' ? await changedFiles(source, liveSha) : null;
    const migrations = changed?.filter((f) => p.config.migrationsPattern.test(f)) ?? null;
    const doc = {
      env: p.prepared.inventory.env,
      check: true,
      branch: source.branch,
      sha: source.sha,
      release,
      changedFiles: changed?.length ?? null,
      migrationsChanged: migrations ? migrations.length > 0 : null,
      migrations,
      requirementsChanged: hosts.some((h) => 'requirementsChanged' in h && h.requirementsChanged),
      hosts,
    };
    if (json) ctx.out.json(doc);
    else {
      ctx.out.line(`would deploy ${source.branch} @ ${source.sha.slice(0, 12)} as ${release} (check: nothing was changed)`);
      for (const h of hosts) {
        if ('error' in h) ctx.out.line(`  ${h.name}: UNREACHABLE: ${h.error}`);
        else
          ctx.out.line(
            `  ${h.name}: live ${h.live ?? '(none yet)'}${h.liveSha ? ` @ ${h.liveSha.slice(0, 12)}` : ''}${h.lockedBy ? `; locked by ${h.lockedBy}` : ''}`,
          );
      }
      ctx.out.line(`  files changed: ${changed ? changed.length : 'unknown (the live commit is not in this checkout, or nothing is live yet)'}`);
      ctx.out.line(`  requirements: ${doc.requirementsChanged ? 'changed: a new virtualenv is built' : 'unchanged: the virtualenv is reused'}`);
      ctx.out.line(`  migrations: ${migrations === null ? 'unknown' : migrations.length ? `changed (${migrations.join(', ')})` : 'unchanged'}`);
    }
    return hosts.some((h) => 'error' in h) ? 2 : 0;
  } finally {
    await pool.close();
  }
}

function printStep(say: (line: string) => void, host: string, st: StepRecord, verbose: boolean): void {
  const time = st.durationMs !== undefined ? ` ${(st.durationMs / 1000).toFixed(1)}s` : '';
  const last = stepSummary(st);
  if (st.status === 'failed') {
    say(`${host}  ${st.phase}/${st.name}  FAILED${st.code !== undefined ? ` (exit ${st.code})` : ''}${time}`);
  } else {
    say(`${host}  ${st.phase}/${st.name}  ${st.status}${time}${last && (verbose || st.phase !== 'build') ? `  ${last.slice(0, 120)}` : ''}`);
  }
}

/** A step's line in one glance: its last line, or for a step that runs several things (the
 *  reload hooks, the process checks) the name of each, so two daemons do not look like one. */
function stepSummary(st: StepRecord): string {
  const lines = (st.output ?? '').trim().split('\n').filter(Boolean);
  const hooks = lines.filter((l) => l.startsWith('== ')).map((l) => l.slice(3).replace(/^.*\//, ''));
  if (hooks.length) return `reloaded: ${hooks.join(', ')}`;
  const running = lines.filter((l) => l.startsWith('running: ')).map((l) => l.slice(9));
  if (running.length > 1) return `up: ${running.join(', ')}`;
  return lines.pop() ?? '';
}

function printDeploy(ctx: CliContext, r: DeployReport): void {
  ctx.out.line('');
  const secs = (r.durationMs / 1000).toFixed(1);
  if (r.status === 'deployed') {
    ctx.out.line(`deployed ${r.release} (${r.branch} @ ${r.sha.slice(0, 12)}) to ${r.hosts.map((h) => h.name).join(', ')} in ${secs} s`);
  } else {
    ctx.out.line(`DEPLOY ${r.status === 'rolled back' ? 'ROLLED BACK' : 'FAILED'} after ${secs} s:`);
    ctx.out.line(r.error ?? '');
  }
  for (const h of r.hosts) {
    if (h.live === null)
      ctx.out.line(`  ${h.name}: UNKNOWN (not reachable since its release may have changed; it ran ${h.previous || 'nothing'} before): run keel releases`);
    else ctx.out.line(`  ${h.name}: live ${h.live || '(none)'}${h.previous && h.previous !== h.live ? ` (was ${h.previous})` : ''}`);
  }
  if (r.dump) ctx.out.line(`  dump taken first: ${r.dump.host}:${r.dump.path}`);
  if (r.batches) ctx.out.line(`  rolling, in batches: ${r.batches.map((b) => b.join(' ')).join(' | ')}`);
}

export async function rollback(ctx: CliContext, env: string, o: HostOptions & { to?: string; yes?: boolean; allowSplit?: boolean }): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o, { verb: 'roll back', allowSplit: o.allowSplit });
  if (!o.yes && ctx.interactive && !json && process.stdout.isTTY) {
    if (!(await confirm(`Roll ${env} back to ${o.to ?? 'the previous release'}?`))) return 0;
  }
  const owner = newLockOwner(describeCommand('rollback', env, o, o.to ? ['--to', o.to] : []));
  const trap = trapSignals(ctx.out, ctx.signal);
  const notifier = new Notifier(p.config.notify, { mask: p.ctx.mask, warn: (l) => ctx.out.warn(l) });
  const run = runContext();
  const base: NoticeBase = { command: 'rollback', env, branch: null, sha: null, release: o.to ?? null, ...run, hosts: p.config.hosts.map((h) => h.name) };
  let r: ops.RollbackResult;
  try {
    r = await withNotices(
      notifier,
      base,
      () => ops.rollback(p.ctx, owner, o.to, trap.signal),
      (x) => ({
        event: x.ok ? 'success' : 'failure',
        result: x.ok ? `rolled back to ${x.to}` : `rollback to ${x.to} failed: every host is on the release it had`,
        error: x.ok ? null : firstLine(x.lines.find((l) => / FAILED/.test(l)) ?? null),
        release: x.to,
        sha: x.sha || null,
        branch: x.branch || null,
      }),
    );
  } finally {
    trap.dispose();
  }
  if (json) ctx.out.json({ env, to: r.to, from: r.from, ok: r.ok, lines: r.lines, unknown: r.unknown });
  else {
    for (const l of r.lines) ctx.out.line(l);
    ctx.out.line(r.ok ? `every host is on ${r.to}` : `rollback to ${r.to} FAILED`);
    ctx.out.line('note: migrations are not undone by a rollback (keel backups lists the dumps taken before each deploy)');
  }
  if (trap.signal.aborted)
    throw new InterruptedError(trap.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', [
      r.ok ? `every host is on ${r.to}` : 'every host is on the release it had',
    ]);
  if (r.unknown.length) return EXIT_UNKNOWN;
  return r.ok ? 0 : 2;
}

export async function releases(ctx: CliContext, env: string, o: HostOptions): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  const hosts = await ops.listReleases(p.ctx);
  const reached = hosts.filter((h) => !h.error);
  const split = new Set(reached.map((h) => h.live)).size > 1;
  if (json) ctx.out.json({ env, split, hosts });
  else {
    for (const h of hosts) {
      ctx.out.line(`${h.host}${h.error ? `: UNREACHABLE: ${h.error}` : ''}`);
      for (const r of [...h.releases].reverse()) {
        const state = r.live ? '  (live)' : r.failed ? `  FAILED: ${r.failed}` : r.built ? '' : '  (build not finished: cannot go live)';
        ctx.out.line(`  ${r.live ? '*' : ' '} ${r.id}  ${r.branch || '?'} @ ${r.sha.slice(0, 12) || '?'}  by ${r.by || '?'}${state}`);
      }
      if (!h.error && !h.releases.length) ctx.out.line('    (no release yet)');
    }
    if (split) {
      ctx.out.line('');
      ctx.out.line(`WARNING: hosts run different releases: ${reached.map((h) => `${h.host} runs ${h.live || 'nothing'}`).join(', ')}`);
      ctx.out.line(`  keel deploy ${env} (no --limit) or keel rollback ${env} --to <release> puts them on one`);
    }
  }
  return hosts.some((h) => h.error) ? 2 : 0;
}

export async function maintenance(ctx: CliContext, state: string, env: string, o: HostOptions): Promise<number> {
  if (state !== 'on' && state !== 'off' && state !== 'status') throw new ConfigError(`keel maintenance takes on, off or status, got "${state}"`);
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  if (state === 'status') {
    const hosts = await ops.maintenanceStatus(p.ctx);
    if (json) ctx.out.json({ env, hosts });
    else for (const h of hosts) ctx.out.line(`${h.host}: ${h.error ? `UNREACHABLE: ${h.error}` : h.on ? `ON (${h.file} exists)` : 'off'}`);
    return hosts.some((h) => h.error) ? 2 : 0;
  }
  const r = await ops.maintenance(p.ctx, newLockOwner(describeCommand(`maintenance ${state}`, env, o)), state === 'on');
  if (json) ctx.out.json({ env, maintenance: state, ok: r.ok, lines: r.lines });
  else for (const l of r.lines) ctx.out.line(l);
  return r.ok ? 0 : 2;
}

export async function backup(ctx: CliContext, env: string, o: HostOptions): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  const name = `${releaseId('manual').replace(/-manual$/, '')}-manual`;
  const r = await ops.backupNow(p.ctx, newLockOwner(describeCommand('backup', env, o)), name);
  if (json) ctx.out.json({ env, ok: r.ok, host: r.host, path: r.ok ? r.path : null, lines: r.lines });
  else {
    for (const l of r.lines) ctx.out.line(l);
    ctx.out.line(r.ok ? `verified dump: ${r.host}:${r.path}` : 'backup FAILED: no dump was kept');
  }
  return r.ok ? 0 : 2;
}

export async function backups(ctx: CliContext, env: string, o: HostOptions): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  const r = await ops.listBackups(p.ctx);
  if (json) ctx.out.json({ env, ...r });
  else {
    ctx.out.line(`${r.host}:${r.dir}`);
    for (const d of r.dumps) {
      const before = d.release ? `before ${d.release} (${d.releaseState})` : d.releaseState;
      const notes = `${d.migrated ? '; a migration followed it' : ''}${d.verified ? '' : '; not verified by keel (no checksum)'}`;
      ctx.out.line(`  ${d.time}  ${String(d.bytes).padStart(12)}  ${d.path}  ${before}${notes}`);
    }
    if (!r.dumps.length) ctx.out.line('  (no dump yet: keel backup ' + env + ')');
  }
  return 0;
}

export async function restore(ctx: CliContext, env: string, dump: string, o: HostOptions & { yes?: boolean }): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  if (!o.yes) {
    if (!ctx.interactive) throw new ConfigError('keel backup restore replaces the database: confirm with --yes when not on a terminal');
    if (!(await confirm(`Replace the database of ${env} with ${dump}? Everything written since that dump is lost.`))) {
      ctx.out.warn('aborted: nothing was restored.');
      return 0;
    }
  }
  const notifier = new Notifier(p.config.notify, { mask: p.ctx.mask, warn: (l) => ctx.out.warn(l) });
  const base: NoticeBase = {
    command: 'backup restore',
    env,
    branch: null,
    sha: null,
    release: null,
    dump,
    ...runContext(),
    hosts: p.config.backupHost ? [p.config.backupHost.name] : [],
  };
  const r = await withNotices(
    notifier,
    base,
    () => ops.restoreBackup(p.ctx, newLockOwner(describeCommand('backup restore', env, o, [dump])), dump),
    (x) => ({
      event: x.ok ? 'success' : 'failure',
      result: x.ok ? 'restored' : 'restore failed',
      error: x.ok ? null : firstLine(x.lines.find((l) => / FAILED/.test(l))),
    }),
  );
  if (json) ctx.out.json({ env, dump, ok: r.ok, lines: r.lines });
  else {
    for (const l of r.lines) ctx.out.line(l);
    ctx.out.line(r.ok ? `restored ${dump}` : 'restore FAILED');
  }
  return r.ok ? 0 : 2;
}
