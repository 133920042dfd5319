// The deploy's other commands: keel releases, rollback, maintenance on|off, backup, backups,
// backup restore. Each that changes a host takes the run lock on every host first, like deploy.
import { KeelError, LockedError, lastLines, tailLines } from '../errors.js';
import type { HostPlan } from '../engine/plan.js';
import type { HostSession } from '../ssh/types.js';
import { HostPool } from '../engine/pool.js';
import { runSteps, type Step } from '../engine/steps.js';
import { acquireSnippet, assertHeldSnippet, describeHolder, parseLockReport, releaseScript, type LockOwner } from '../engine/lock.js';
import { PRELUDE, newNonce, wrap } from '../engine/script-parts.js';
import { sh, type Shell } from '../shell/quote.js';
import type { DeployConfig, HostDeploy } from './config.js';
import { parseDatabaseUrl } from './database.js';
import { dumpSteps, healthSteps, maintenanceSteps, reloadSteps, restoreSteps, switchSteps } from './scripts.js';
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
  keel_by=$(sed -n 's/^deployed_by=//p' ${rel}/"$keel_r"/.keel-release 2>/dev/null | tr '|' ' ')
  printf '%s rel %s|%s|%s|%s|%s\\n' ${nonce} "$keel_r" "$(cat ${rel}/"$keel_r"/REVISION 2>/dev/null)" "$keel_b" "$keel_f" "$keel_by"
done
`;
}

function parseReleases(host: string, out: string, nonce: string): HostReleases {
  const live = new RegExp(`^${nonce} live (.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
  const releases = [...out.matchAll(new RegExp(`^${nonce} rel (.*)$`, 'gm'))].map((m) => {
    const [id = '', sha = '', branch = '', failed = '', by = ''] = m[1]!.split('|');
    return { id, sha, branch, failed, live: id === live, by };
  });
  return { host, live, releases };
}

/** keel releases: which release is live on each host, which are kept, which failed. */
export async function listReleases(ctx: OpsContext): Promise<HostReleases[]> {
  const p = pool(ctx);
  try {
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
  } finally {
    await p.close();
  }
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
  from: Record<string, string>;
  ok: boolean;
  lines: string[];
}

/**
 * keel rollback: every host to `to` (default: the newest release older than the live one that
 * is not marked failed and is on every host), reload, health check. A failed check switches
 * every host back to what was live. Migrations are not undone (see docs/deploy.md).
 */
export async function rollback(ctx: OpsContext, owner: LockOwner, to?: string): Promise<RollbackResult> {
  const p = pool(ctx);
  const history = new HistoryNote(owner, 'rollback', ctx.config.hosts, ctx.mask);
  try {
    return rolledBack(history, await rollbackLocked(ctx, p, owner, to));
  } finally {
    await p.close((host) => history.script(host) + releaseScript(owner.run_id));
  }
}

async function rollbackLocked(ctx: OpsContext, p: HostPool, owner: LockOwner, to?: string): Promise<RollbackResult> {
  const rel = await lockAll(ctx, p, owner);
  const hosts = ctx.config.hosts;
  const live = new Map(hosts.map((h) => [h.name, rel.get(h.name)!.live]));
  const target = to ?? previousRelease([...rel.values()]);
  if (!target) throw new KeelError('no earlier release to go back to on every host (keel releases shows what each host has)');
  const missing = hosts.filter((h) => !rel.get(h.name)!.releases.some((r) => r.id === target));
  if (missing.length)
    throw new KeelError(`release ${target} is not on ${missing.map((h) => h.name).join(', ')}; nothing was changed`, {
      hint: 'keel releases shows what each host has',
    });
  const res = await phase(ctx, p, owner, hosts, (h) => [...switchSteps(h, target), ...reloadSteps(h, 'auto')]);
  const health = res.ok ? await phase(ctx, p, owner, hosts, (h) => healthSteps(h)) : { ok: false, lines: [] };
  if (res.ok && health.ok) return { to: target, from: Object.fromEntries(live), ok: true, lines: [...res.lines, ...health.lines] };
  const back = hosts.filter((h) => live.get(h.name));
  const undo = await phase(ctx, p, owner, back, (h) => [...switchSteps(h, live.get(h.name)!), ...reloadSteps(h, 'auto')]);
  return {
    to: target,
    from: Object.fromEntries(live),
    ok: false,
    lines: [...res.lines, ...health.lines, 'the rollback did not pass: every host went back to the release it had', ...undo.lines],
  };
}

/** A rollback's outcome, in the deploy history. */
function rolledBack(history: HistoryNote, r: RollbackResult): RollbackResult {
  const detail = r.ok ? `to ${r.to}` : `to ${r.to} did not pass; every host went back`;
  history.ended({ from: (h) => r.from[h] ?? '', to: (h) => (r.ok ? r.to : (r.from[h] ?? '')), ok: r.ok, detail });
  return r;
}

/** The newest release before the live one, not failed, on every host. */
export function previousRelease(hosts: HostReleases[]): string | undefined {
  const first = hosts[0];
  if (!first) return undefined;
  const candidates = first.releases
    .filter((r) => r.id < first.live && !r.failed)
    .map((r) => r.id)
    .filter((id) => hosts.every((h) => h.releases.some((r) => r.id === id && !r.failed)))
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

/** keel backups: the verified dumps on the backup host, newest first. */
export async function listBackups(ctx: OpsContext): Promise<{ host: string; dir: string; dumps: { path: string; bytes: number; time: string }[] }> {
  const h = backupHost(ctx);
  const c = { ...ctx, config: { ...ctx.config, hosts: [h] } };
  const p = pool(c);
  try {
    const [o] = await p.each([h.plan.host], async (s) => {
      const r = await s.runScript(
        wrap(
          PRELUDE +
            sh`ls -1t -- ${h.backupDir}/*.dump 2>/dev/null | while IFS= read -r keel_f; do ` +
            sh`printf '%s\\t%s\\t%s\\n' "$keel_f" "$(stat -c %s -- "$keel_f")" "$(date -u -d "@$(stat -c %Y -- "$keel_f")" +%Y-%m-%dT%H:%M:%SZ)"; done\n`,
        ),
        { timeoutMs: 60_000 },
      );
      return r.stdout;
    });
    if (!o!.ok) throw new KeelError(o!.error);
    const dumps = o!.value
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [path = '', bytes = '0', time = ''] = l.split('\t');
        return { path, bytes: Number(bytes), time };
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
