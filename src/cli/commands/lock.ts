// `keel lock status|release <env>`: who holds the run lock of each host, and clearing a lock
// whose run is gone. A live lock (its run's shell still on the host) is only broken with --force.
import type { Command } from 'commander';
import type { CliContext, Runner } from '../context.js';
import { checkOutput, hostOptions, type HostOptions } from '../options.js';

export function registerLock(program: Command, ctx: CliContext, run: Runner): void {
  const lock = program.command('lock').description('the run lock of each host of an environment');
  hostOptions(lock.command('status <env>').description('who holds the lock of each host, and whether that run is still alive')).action(
    run(async (env: string, o: HostOptions) => locks(ctx, env, o, 'status')),
  );
  hostOptions(lock.command('release <env>').description('remove stale locks (their run is gone); --force also breaks a live one'))
    .option('--force', 'also remove a lock whose run is still alive (it may then change the host unlocked)')
    .action(run(async (env: string, o: HostOptions & { force?: boolean }) => locks(ctx, env, o, o.force ? 'force' : 'release')));
}

async function locks(ctx: CliContext, env: string, o: HostOptions, mode: 'status' | 'release' | 'force'): Promise<number> {
  const json = checkOutput(o);
  const [{ prepareFromOptions }, { sshConnector }, { HostPool }, { describeHolder, lockCommandScript, parseLockReport }, { newNonce }, { lockReleaseScript }] =
    await Promise.all([
      import('../prepare.js'),
      import('../../engine/connector.js'),
      import('../../engine/pool.js'),
      import('../../engine/lock.js'),
      import('../../engine/script-parts.js'),
      import('../../deploy/history.js'),
    ]);
  const prepared = await prepareFromOptions(ctx, env, o);
  const connect = sshConnector(prepared, { acceptNewHostKeys: o.acceptNewHostKeys, onNewHostKey: (m) => ctx.out.warn(m) });
  const pool = new HostPool((host) => connect(prepared.plans.find((p) => p.host.name === host.name)!), o.forks);
  try {
    const outcomes = await pool.each(prepared.hosts, async (s) => {
      const nonce = newNonce();
      const r = await s.runScript(lockCommandScript(nonce, mode), { timeoutMs: 30_000 });
      const report = parseLockReport(r.stdout, nonce);
      if (report?.kind === 'held' && report.removed)
        await s.runScript(lockReleaseScript(env, mode, prepared.plans, s.host, report.holder, (t) => ctx.out.redactor.mask(t)));
      return report ?? { kind: 'error' as const, error: `unexpected answer (exit ${r.code}): ${r.stderr.trim()}` };
    });
    const rows = outcomes.map((o) => {
      if (!o.ok) return { host: o.host.name, state: 'unreachable', detail: o.error };
      const r = o.value;
      if (r.kind === 'error') return { host: o.host.name, state: 'error', detail: r.error };
      if (r.kind !== 'held') return { host: o.host.name, state: 'free', detail: '' };
      const state = r.removed ? `released (was ${r.holder.state})` : r.holder.state === 'live' ? 'held' : 'stale';
      return { host: o.host.name, state, detail: describeHolder(r.holder), owner: r.holder.owner };
    });
    if (json) ctx.out.json({ env, hosts: rows });
    else {
      for (const r of rows) ctx.out.line(`${r.host}  ${r.state}${r.detail ? `  ${r.detail}` : ''}`);
      const stale = rows.filter((r) => r.state === 'stale');
      const live = rows.filter((r) => r.state === 'held');
      if (mode === 'status' && stale.length)
        ctx.out.line(`\n${stale.length} stale lock(s): their run is gone. If no keel run is still working on them: keel lock release ${env}`);
      if (mode === 'release' && live.length)
        ctx.out.line(`\n${live.length} lock(s) left alone: their run is still alive. Wait for it, or --force if you are sure.`);
    }
    return rows.some((r) => r.state === 'unreachable' || r.state === 'error') ? 2 : 0;
  } finally {
    await pool.close();
  }
}
