// The deploy's other commands: keel releases, rollback, maintenance on|off, backup, backups,
// backup restore. Each that changes a host takes the run lock on every host first, like deploy.
import { KeelError, LockedError, lastLines, tailLines } from '../errors.js';
import type { HostPlan } from '../engine/plan.js';
import type { HostSession } from '../ssh/types.js';
import { HostPool } from '../engine/pool.js';
import { runSteps, type Step } from '../engine/steps.js';
import { acquireSnippet, assertHeldSnippet, describeHolder, parseLockReport, releaseScript, type LockOwner } from '../engine/lock.js';
import { PRELUDE, newNonce, wrap } from '../engine/script-parts.js';
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import type { DeployConfig, HostDeploy } from './config.js';
import { parseDatabaseUrl } from './database.js';
import { maintenanceSteps } from './scripts.js';
import { dumpSteps, restoreSteps } from './db-scripts.js';
import { Phases, type StepRecord } from './phases.js';
import { switchRelease } from './switch.js';
import { HistoryNote } from './history.js';

export interface OpsContext {
  config: DeployConfig;
  connect: (plan: HostPlan) => Promise<HostSession>;
  forks?: number;
  mask: (s: string) => string;
}

export interface ReleaseInfo {
  id: string;
  sha: string;
  branch: string;
  failed: string;
  /** Its build completed (the build writes .keel-built last): it can go live. */
  built: boolean;
  live: boolean;
  /** Who deployed it (user@controller, from the release's .keel-release). */
  by: string;
}

export interface HostReleases {
  host: string;
  live: string;
  releases: ReleaseInfo[];
  error?: string;
}

function pool(ctx: OpsContext): HostPool {
  const byName = new Map(ctx.config.hosts.map((h) => [h.name, h.plan]));
  return new HostPool((host) => ctx.connect(byName.get(host.name)!), ctx.forks);
}

function releasesScript(h: HostDeploy, nonce: string): Shell {
  const rel = `${h.appRoot}/releases`;
  return sh`printf '%s live %s\\n' ${nonce} "$(readlink -- ${h.appRoot + '/current'} 2>/dev/null | sed 's#^releases/##')"
for keel_r in $(ls -1 -- ${rel} 2>/dev/null | sort); do
  keel_b=$(sed -n 's/^branch=//p' ${rel}/"$keel_r"/.keel-release 2>/dev/null)
  keel_f=$(head -n 1 ${rel}/"$keel_r"/.keel-failed 2>/dev/null | tr '|' ' ')
  if [ -e ${rel}/"$keel_r"/.keel-built ]; then keel_done=1; else keel_done=0; fi
  keel_by=$(sed -n 's/^deployed_by=//p' ${rel}/"$keel_r"/.keel-release 2>/dev/null | tr '|' ' ')
  printf '%s rel %s|%s|%s|%s|%s|%s\\n' ${nonce} "$keel_r" "$(cat ${rel}/"$keel_r"/REVISION 2>/dev/null)" "$keel_b" "$keel_done" "$keel_by" "$keel_f"
done
`;
}

function parseReleases(host: string, out: string, nonce: string): HostReleases {
  const live = new RegExp(`^${nonce} live (.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
  const releases = [...out.matchAll(new RegExp(`^${nonce} rel (.*)$`, 'gm'))].map((m) => {
    const [id = '', sha = '', branch = '', built = '0', by = '', ...failed] = m[1]!.split('|');
    return { id, sha, branch, failed: failed.join(' '), built: built === '1', live: id === live, by };
  });
  return { host, live, releases };
}

/** keel releases: which release is live on each host, which are kept, which failed. */
export async function listReleases(ctx: OpsContext): Promise<HostReleases[]> {
  const p = pool(ctx);
  try {
    return await readReleases(ctx, p);
  } finally {
    await p.close();
  }
}

/** Each host's releases, over the run's connections (an unreachable host: its error). */
async function readReleases(ctx: OpsContext, p: HostPool): Promise<HostReleases[]> {
  const outcomes = await p.each(
    ctx.config.hosts.map((h) => h.plan.host),
    async (s, host) => {
      const h = ctx.config.hosts.find((x) => x.name === host.name)!;
      const nonce = newNonce();
      const r = await s.runScript(wrap(PRELUDE + releasesScript(h, nonce)), { timeoutMs: 60_000 });
      return parseReleases(host.name, r.stdout, nonce);
    },
  );
  return outcomes.map((o) => (o.ok ? o.value : { host: o.host.name, live: '', releases: [], error: o.error }));
}

/** Take the lock on every host (and read their releases), or give back what was taken. */
async function lockAll(ctx: OpsContext, p: HostPool, owner: LockOwner): Promise<Map<string, HostReleases>> {
  const out = new Map<string, HostReleases>();
  const problems: string[] = [];
  const outcomes = await p.each(
    ctx.config.hosts.map((h) => h.plan.host),
    async (s, host) => {
      const h = ctx.config.hosts.find((x) => x.name === host.name)!;
      const nonce = newNonce();
      const r = await s.runScript(wrap(PRELUDE + acquireSnippet(nonce, owner) + releasesScript(h, nonce)), { timeoutMs: 60_000 });
      return { lock: parseLockReport(r.stdout, nonce), rel: parseReleases(host.name, r.stdout, nonce) };
    },
  );
  for (const o of outcomes) {
    if (!o.ok) problems.push(`${o.host.name}: ${o.error}`);
    else if (o.value.lock?.kind === 'held')
      problems.push(
        `${o.host.name} is locked by ${o.value.lock.holder.state === 'stale' ? 'a run that is gone (stale lock): ' : ''}${describeHolder(o.value.lock.holder)}`,
      );
    else if (o.value.lock?.kind !== 'acquired') problems.push(`${o.host.name}: could not take the lock`);
    else out.set(o.host.name, o.value.rel);
  }
  if (problems.length)
    throw new LockedError(`${problems.join('\n')}\nnothing was changed on any host`, { hint: '`keel lock status <env>` shows who holds what' });
  return out;
}

async function phase(
  ctx: OpsContext,
  p: HostPool,
  owner: LockOwner,
  hosts: HostDeploy[],
  steps: (h: HostDeploy) => Step[],
): Promise<{ ok: boolean; lines: string[] }> {
  const outcomes = await p.each(
    hosts.map((h) => h.plan.host),
    (s, host) =>
      runSteps(s, steps(hosts.find((h) => h.name === host.name)!), { captureAll: true, timed: true, prefix: assertHeldSnippet(owner.run_id), mask: ctx.mask }),
  );
  const lines: string[] = [];
  let ok = true;
  for (const o of outcomes) {
    if (!o.ok) {
      ok = false;
      lines.push(`${o.host.name}: ${o.error}`);
      continue;
    }
    for (const st of o.value.steps) {
      const out = (st.output ?? '').trim();
      if (st.status === 'failed') {
        ok = false;
        lines.push(`${o.host.name}: ${st.key} FAILED (exit ${st.code}):\n${lastLines(out, 12)}`);
      } else if (out) lines.push(`${o.host.name}: ${st.key}: ${tailLines(out, 3).join(' | ')}`);
    }
    if (o.value.code !== 0 && !o.value.steps.some((s) => s.status === 'failed')) {
      ok = false;
      lines.push(`${o.host.name}: script ended early (exit ${o.value.code}):\n${lastLines(o.value.stderr, 8)}`);
    }
  }
  return { ok, lines };
}

export interface RollbackResult {
  to: string;
  /** The commit and branch of `to` (as its release recorded them). */
  sha: string;
  branch: string;
  from: Record<string, string>;
  ok: boolean;
  lines: string[];
  /** Hosts whose live release is unknown (unreachable after it may have changed). */
  unknown: string[];
}

/**
 * keel rollback: every host to `to` (default: the newest release older than the live one
 * whose build completed and that did not fail, on every host), the same way a deploy switches
 * (switch.ts): started beside the live release and checked before it gets traffic; a failure
 * after the switch puts every host back on what it ran. Migrations are not undone.
 */
export async function rollback(ctx: OpsContext, owner: LockOwner, to?: string, signal?: AbortSignal): Promise<RollbackResult> {
  const hosts = ctx.config.hosts;
  const p = new Phases({ hosts, connect: ctx.connect, forks: ctx.forks, owner, mask: ctx.mask });
  const history = new HistoryNote(owner, 'rollback', hosts, ctx.mask);
  try {
    await p.lockAndRead('changed');
    const rel = await readReleases(ctx, p.pool);
    const lost = rel.filter((h) => h.error);
    if (lost.length) throw new KeelError(`${lost.map((h) => `${h.host}: ${h.error}`).join('\n')}\nnothing was changed`);
    const live = new Map(hosts.map((h) => [h.name, p.before(h).live]));
    const target = to ?? previousRelease(rel);
    if (!target) throw new KeelError('no earlier release to go back to on every host (keel releases shows what each host has)');
    const problems = hosts.flatMap((h) => {
      const r = rel.find((x) => x.host === h.name)?.releases.find((x) => x.id === target);
      if (!r) return [`release ${target} is not on ${h.name}`];
      if (!r.built) return [`release ${target} on ${h.name} was never built completely (its build was cut short): it cannot go live`];
      return [];
    });
    if (problems.length) throw new KeelError(`${problems.join('\n')}\nnothing was changed`, { hint: 'keel releases shows what each host has' });
    const out = await switchRelease({ phases: p, hosts, to: target, maintenance: false, signal });
    const lines = [...p.reports.values()].flatMap((r) => stepLines(r.name, r.steps));
    if (out.status === 'not switched') lines.push(`${target} failed its checks before it got any traffic: every host stays on what it runs`);
    if (out.status === 'switched back') lines.push('the rollback did not pass: every host went back to the release it had', ...p.unknownHosts());
    const info = rel[0]?.releases.find((x) => x.id === target);
    const ok = out.status === 'switched';
    const detail = ok ? `to ${target}` : `to ${target} did not pass; every host went back`;
    history.ended({ from: (h) => live.get(h) ?? '', to: (h) => p.reports.get(h)?.live ?? 'unknown', ok, detail });
    return { to: target, sha: info?.sha ?? '', branch: info?.branch ?? '', from: Object.fromEntries(live), ok, lines, unknown: p.unknownHosts() };
  } finally {
    await p.pool.close((host) => history.script(host) + releaseScript(owner.run_id));
  }
}

/** A phase's steps as lines: a failure with its last lines, else the last lines of output. */
function stepLines(host: string, steps: StepRecord[]): string[] {
  return steps.flatMap((st) => {
    const out = (st.output ?? '').trim();
    if (st.status === 'failed') return [`${host}: ${st.phase}/${st.name} FAILED${st.code !== undefined ? ` (exit ${st.code})` : ''}:\n${lastLines(out, 12)}`];
    return out && st.status === 'ok' ? [`${host}: ${st.phase}/${st.name}: ${tailLines(out, 3).join(' | ')}`] : [];
  });
}

/** The newest release before the live one, built, not failed, on every host. */
export function previousRelease(hosts: HostReleases[]): string | undefined {
  const first = hosts[0];
  if (!first) return undefined;
  const eligible = (r: ReleaseInfo) => r.built && !r.failed;
  const candidates = first.releases
    .filter((r) => r.id < first.live && eligible(r))
    .map((r) => r.id)
    .filter((id) => hosts.every((h) => h.releases.some((r) => r.id === id && eligible(r))))
    .sort();
  return candidates.pop();
}

/** keel maintenance on|off: the nginx role's maintenance page on every web host. */
export async function maintenance(ctx: OpsContext, owner: LockOwner, on: boolean): Promise<{ ok: boolean; lines: string[] }> {
  const web = ctx.config.hosts.filter((h) => h.web);
  if (!web.length) throw new KeelError('no host of this deploy has role nginx: there is no maintenance page to switch');
  const p = pool(ctx);
  const c = { ...ctx, config: { ...ctx.config, hosts: web } };
  const history = new HistoryNote(owner, on ? 'maintenance on' : 'maintenance off', web, ctx.mask);
  try {
    await lockAll(c, p, owner);
    const r = await phase(c, p, owner, web, (h) => maintenanceSteps(h, on));
    history.ended({ from: () => '', to: () => (r.ok ? (on ? 'on' : 'off') : ''), ok: r.ok, detail: r.ok ? '' : (r.lines.at(-1) ?? '') });
    return r;
  } finally {
    await p.close((host) => history.script(host) + releaseScript(owner.run_id));
  }
}

/** keel maintenance status: whether each web host serves the maintenance page (no lock). */
export async function maintenanceStatus(ctx: OpsContext): Promise<{ host: string; on: boolean; file: string; error?: string }[]> {
  const web = ctx.config.hosts.filter((h) => h.web);
  if (!web.length) throw new KeelError('no host of this deploy has role nginx: there is no maintenance page');
  const p = pool({ ...ctx, config: { ...ctx.config, hosts: web } });
  try {
    const outcomes = await p.each(
      web.map((h) => h.plan.host),
      async (s, host) => {
        const h = web.find((x) => x.name === host.name)!;
        const r = await s.runScript(
          wrap(
            PRELUDE +
              sh`if [ -e ${h.maintenanceFile} ]; then echo on; else echo off; fi
`.text,
          ),
          { timeoutMs: 60_000 },
        );
        return { host: h.name, on: r.stdout.trim() === 'on', file: h.maintenanceFile };
      },
    );
    return outcomes.map((o) => (o.ok ? o.value : { host: o.host.name, on: false, file: '', error: o.error }));
  } finally {
    await p.close();
  }
}

function backupHost(ctx: OpsContext): HostDeploy {
  const h = ctx.config.backupHost;
  if (!h) throw new KeelError('no backup host: the app has no database_url (or deploy_backup is false)');
  return h;
}

/** keel backup: a verified dump now. */
export async function backupNow(ctx: OpsContext, owner: LockOwner, name: string): Promise<{ ok: boolean; lines: string[]; path: string; host: string }> {
  const h = backupHost(ctx);
  const db = parseDatabaseUrl(ctx.config.databaseUrl);
  const c = { ...ctx, config: { ...ctx.config, hosts: [h] } };
  const p = pool(c);
  try {
    await lockAll(c, p, owner);
    const r = await phase(c, p, owner, [h], (x) => dumpSteps(x, { db, dir: x.backupDir, name, keep: x.backupKeep }));
    return { ...r, path: `${h.backupDir}/${name}.dump`, host: h.name };
  } finally {
    await p.close(() => releaseScript(owner.run_id));
  }
}

export interface DumpInfo {
  path: string;
  bytes: number;
  time: string;
  /** The release it was taken before ("" for keel backup's own). */
  release: string;
  /** A migration changed the database after it: restoring it undoes that migration. */
  migrated: boolean;
  /** Checked when it was taken: read whole, checksum recorded. */
  verified: boolean;
  /** That release on the backup host: live, kept, failed (why), or gone (pruned). */
  releaseState: string;
}

/** keel backups: the verified dumps on the backup host, newest first, with the release each one
 *  preceded, whether a migration followed it, and what became of that release. */
export async function listBackups(ctx: OpsContext): Promise<{ host: string; dir: string; dumps: DumpInfo[] }> {
  const h = backupHost(ctx);
  const c = { ...ctx, config: { ...ctx.config, hosts: [h] } };
  const p = pool(c);
  const rel = `${h.appRoot}/releases`;
  try {
    const [o] = await p.each([h.plan.host], async (s) => {
      const state = joinShell([
        sh`if [ "$keel_r" = "$keel_live" ]; then keel_s=live`,
        sh`elif [ -e ${rel}/"$keel_r"/.keel-failed ]; then keel_s="failed: $(head -n 1 ${rel}/"$keel_r"/.keel-failed)"`,
        sh`elif [ -e ${rel}/"$keel_r"/.keel-built ]; then keel_s=kept`,
        sh`elif [ -d ${rel}/"$keel_r" ]; then keel_s=unfinished; else keel_s=gone; fi`,
      ]);
      const flag = (suffix: string) => raw(`"$([ -e "$keel_f${suffix}" ] && echo 1 || echo 0)"`);
      const script = joinShell([
        sh`keel_live=$(readlink -- ${h.appRoot + '/current'} 2>/dev/null | sed 's#^releases/##')`,
        sh`ls -1 -- ${h.backupDir} 2>/dev/null | grep '\\.dump$' | sort -r | while IFS= read -r keel_n; do`,
        sh`keel_f=${h.backupDir}/"$keel_n"; keel_r=\${keel_n%.dump}`,
        state,
        sh`keel_t=$(date -u -d "@$(stat -c %Y -- "$keel_f")" +%Y-%m-%dT%H:%M:%SZ)`,
        sh`printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$keel_f" "$(stat -c %s -- "$keel_f")" "$keel_t" ${flag('.migrated')} ${flag('.sha256')} "$keel_s"`,
        raw('done'),
      ]);
      const r = await s.runScript(wrap(PRELUDE + script.text + '\n'), { timeoutMs: 60_000 });
      return r.stdout;
    });
    if (!o!.ok) throw new KeelError(o!.error);
    const dumps = o!.value
      .split('\n')
      .filter(Boolean)
      .map((l): DumpInfo => {
        const [path = '', bytes = '0', time = '', migrated = '0', verified = '0', state = ''] = l.split('\t');
        const name = path.replace(/^.*\//, '').replace(/\.dump$/, '');
        const manual = name.endsWith('-manual');
        return {
          path,
          bytes: Number(bytes),
          time,
          release: manual ? '' : name,
          migrated: migrated === '1',
          verified: verified === '1',
          releaseState: manual ? 'taken by keel backup' : state,
        };
      });
    return { host: h.name, dir: h.backupDir, dumps };
  } finally {
    await p.close();
  }
}

/** keel backup restore: never automatic; the CLI asks first. */
export async function restoreBackup(ctx: OpsContext, owner: LockOwner, file: string): Promise<{ ok: boolean; lines: string[] }> {
  const h = backupHost(ctx);
  const db = parseDatabaseUrl(ctx.config.databaseUrl);
  const path = file.includes('/') ? file : `${h.backupDir}/${file}`;
  const c = { ...ctx, config: { ...ctx.config, hosts: [h] } };
  const p = pool(c);
  const history = new HistoryNote(owner, 'restore', [h], ctx.mask);
  try {
    await lockAll(c, p, owner);
    const r = await phase(c, p, owner, [h], (x) => restoreSteps(x, db, path));
    history.ended({ from: () => '', to: () => path, ok: r.ok, detail: r.ok ? `restored ${path}` : (r.lines.at(-1) ?? '') });
    return r;
  } finally {
    await p.close((host) => history.script(host) + releaseScript(owner.run_id));
  }
}
