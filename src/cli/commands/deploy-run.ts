// What keel deploy, rollback, releases, maintenance, backup(s) do: prepare (the same pipeline
// as provision: inventory, vault, roles), read the deploy settings, run on the hosts, report.
import { ConfigError, KeelError, lastLines } from '../../errors.js';
import type { PreparedRun } from '../../engine/pipeline.js';
import { sshConnector } from '../../engine/connector.js';
import { newLockOwner, peekSnippet, parseLockReport, describeHolder } from '../../engine/lock.js';
import { HostPool } from '../../engine/pool.js';
import { PRELUDE, newNonce, wrap } from '../../engine/script-parts.js';
import { deployConfig, type DeployConfig, type HostDeploy } from '../../deploy/config.js';
import { parseDatabaseUrl } from '../../deploy/database.js';
import { runDeploy, type DeployReport, type StepRecord } from '../../deploy/run.js';
import { liveStateSnippet, lsRemoteScript, parseLiveState } from '../../deploy/scripts.js';
import { archive, changedFiles, fileAt, isGitUrl, releaseId, resolveLocal, urlSource, venvKey, type Source } from '../../deploy/source.js';
import * as ops from '../../deploy/ops.js';
import { RunLog } from '../../report/log.js';
import { deployJson } from '../../report/json.js';
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

async function prepare(ctx: CliContext, env: string, o: HostOptions): Promise<Prepared> {
  const prepared = await prepareFromOptions(ctx, env, o);
  const config = deployConfig(prepared.plans, prepared.inventory.file);
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

export async function deploy(ctx: CliContext, env: string, o: DeployOptions): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  const { config } = p;
  const source = await resolveSource(ctx, p, o);
  const release = releaseId(source.sha);
  const requirements = source.kind === 'local' ? await fileAt(source, config.migrateHost.requirements) : null;
  // A git URL: the requirements are not read here, so each commit gets its own environment.
  const keyOf = (h: HostDeploy) => venvKey(source.kind === 'local' ? requirements : `url:${source.sha}`, h.python, h.pipIndexUrl, h.wheelhouse);
  if (o.check) return deployCheck(ctx, p, source, release, keyOf, json);

  const hostNames = config.hosts.map((h) => h.name).join(', ');
  if (!o.yes && ctx.interactive && !json && process.stdout.isTTY) {
    if (!(await confirm(`Deploy ${source.branch} (${source.sha.slice(0, 12)}) to ${config.hosts.length} host(s) of ${env} (${hostNames})?`))) {
      ctx.out.warn('aborted: nothing was run.');
      return 0;
    }
  }
  const code = source.kind === 'local' ? await archive(source) : undefined;
  const owner = newLockOwner(describeCommand('deploy', env, o, ['--branch', source.branch]), { branch: source.branch, release });
  const log = new RunLog(ctx.root, 'deploy', env, ctx.out.redactor);
  log.write('start', { env, release, sha: source.sha, branch: source.branch, hosts: config.hosts.map((h) => h.name) });
  if (!json) ctx.out.line(`deploy ${source.branch} @ ${source.sha.slice(0, 12)} as ${release} to ${hostNames}`);
  const trap = trapSignals(ctx.out, ctx.signal);
  try {
    const report = await runDeploy({
      env,
      config,
      source,
      release,
      archive: code,
      venvKey: keyOf,
      connect: p.ctx.connect,
      forks: o.forks,
      owner,
      maintenance: !!o.maintenance,
      signal: trap.signal,
      mask: p.ctx.mask,
      onPhase: (phase) => log.write('phase', { phase }),
      onStep: (host, st) => {
        log.write('step', { host, ...st });
        if (!json) printStep(ctx, host, st, !!o.verbose);
      },
    });
    log.write('end', { status: report.status, error: report.error, dump: report.dump, durationMs: report.durationMs });
    if (json) ctx.out.json(deployJson(report));
    else printDeploy(ctx, report);
    return report.status === 'deployed' ? 0 : 2;
  } catch (err) {
    log.aborted(err);
    throw err;
  } finally {
    trap.dispose();
    log.close();
  }
}

async function resolveSource(ctx: CliContext, p: Prepared, o: DeployOptions): Promise<Source> {
  const c = p.config;
  if (!isGitUrl(c.repo)) return resolveLocal(ctx.root, c.repo, o.branch, o.ref, c.subdir);
  const src = urlSource(c.repo, o.branch, o.ref, c.subdir);
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
        `--branch ${o.branch}: ${c.migrateHost.name} could not find it in ${c.repo} (exit ${r!.value.code}):\n${lastLines(p.ctx.mask(r!.value.stderr), 8)}`,
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

function printStep(ctx: CliContext, host: string, st: StepRecord, verbose: boolean): void {
  const time = st.durationMs !== undefined ? ` ${(st.durationMs / 1000).toFixed(1)}s` : '';
  const last = (st.output ?? '').trim().split('\n').filter(Boolean).pop() ?? '';
  if (st.status === 'failed') {
    ctx.out.line(`${host}  ${st.phase}/${st.name}  FAILED${st.code !== undefined ? ` (exit ${st.code})` : ''}${time}`);
  } else {
    ctx.out.line(`${host}  ${st.phase}/${st.name}  ${st.status}${time}${last && (verbose || st.phase !== 'build') ? `  ${last.slice(0, 120)}` : ''}`);
  }
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
  for (const h of r.hosts) ctx.out.line(`  ${h.name}: live ${h.live || '(none)'}${h.previous && h.previous !== h.live ? ` (was ${h.previous})` : ''}`);
  if (r.dump) ctx.out.line(`  dump taken first: ${r.dump.host}:${r.dump.path}`);
}

export async function rollback(ctx: CliContext, env: string, o: HostOptions & { to?: string; yes?: boolean }): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  if (!o.yes && ctx.interactive && !json && process.stdout.isTTY) {
    if (!(await confirm(`Roll ${env} back to ${o.to ?? 'the previous release'}?`))) return 0;
  }
  const owner = newLockOwner(describeCommand('rollback', env, o, o.to ? ['--to', o.to] : []));
  const r = await ops.rollback(p.ctx, owner, o.to);
  if (json) ctx.out.json({ env, to: r.to, from: r.from, ok: r.ok, lines: r.lines });
  else {
    for (const l of r.lines) ctx.out.line(l);
    ctx.out.line(r.ok ? `every host is on ${r.to}` : `rollback to ${r.to} FAILED`);
    ctx.out.line('note: migrations are not undone by a rollback (keel backups lists the dumps taken before each deploy)');
  }
  return r.ok ? 0 : 2;
}

export async function releases(ctx: CliContext, env: string, o: HostOptions): Promise<number> {
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
  const hosts = await ops.listReleases(p.ctx);
  if (json) ctx.out.json({ env, hosts });
  else {
    for (const h of hosts) {
      ctx.out.line(`${h.host}${h.error ? `: UNREACHABLE: ${h.error}` : ''}`);
      for (const r of [...h.releases].reverse()) {
        ctx.out.line(
          `  ${r.live ? '*' : ' '} ${r.id}  ${r.branch || '?'} @ ${r.sha.slice(0, 12) || '?'}  by ${r.by || '?'}` +
            `${r.live ? '  (live)' : ''}${r.failed ? `  FAILED: ${r.failed}` : ''}`,
        );
      }
      if (!h.error && !h.releases.length) ctx.out.line('    (no release yet)');
    }
  }
  return hosts.some((h) => h.error) ? 2 : 0;
}

export async function maintenance(ctx: CliContext, state: string, env: string, o: HostOptions): Promise<number> {
  if (state !== 'on' && state !== 'off') throw new ConfigError(`keel maintenance takes on or off, got "${state}"`);
  const json = checkOutput(o);
  const p = await prepare(ctx, env, o);
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
    for (const d of r.dumps) ctx.out.line(`  ${d.time}  ${String(d.bytes).padStart(12)}  ${d.path}`);
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
  const r = await ops.restoreBackup(p.ctx, newLockOwner(describeCommand('backup restore', env, o, [dump])), dump);
  if (json) ctx.out.json({ env, dump, ok: r.ok, lines: r.lines });
  else {
    for (const l of r.lines) ctx.out.line(l);
    ctx.out.line(r.ok ? `restored ${dump}` : 'restore FAILED');
  }
  return r.ok ? 0 : 2;
}
