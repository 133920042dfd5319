// `keel status <env>`: what runs on each host, in one round trip each (src/ops/status.ts).
import type { Command } from 'commander';
import type { CliContext, Runner } from '../context.js';
import { checkOutput, hostOptions, type HostOptions } from '../options.js';

export function registerStatus(program: Command, ctx: CliContext, run: Runner): void {
  hostOptions(
    program
      .command('status <env>')
      .description(
        'per host, in one round trip: the live release (who, when), the app processes (running or failed, since, restarts), ' +
          'nginx and maintenance, disk free, the lock, the newest dump, and whether keel plan would change something',
      ),
  ).action(run(async (env: string, o: HostOptions) => status(ctx, env, o)));
}

async function status(ctx: CliContext, env: string, o: HostOptions): Promise<number> {
  const json = checkOutput(o);
  const [{ prepareOps }, { appFacts, limitPlans }, { hostStatuses, troubled }, { statusText, splitReleases }] = await Promise.all([
    import('../ops.js'),
    import('../../ops/hosts.js'),
    import('../../ops/status.js'),
    import('../../ops/status-text.js'),
  ]);
  const p = await prepareOps(ctx, env, o);
  const backup = p.config?.backupHost;
  const hosts = limitPlans(p.prepared, o.limit).map((plan) => ({
    plan,
    facts: appFacts(plan),
    ...(backup?.name === plan.host.name ? { backupDir: backup.backupDir } : {}),
  }));
  const statuses = await hostStatuses(hosts, async (plan) => (await p.link(plan)).session, p.mask, o.forks);
  const split = splitReleases(statuses).length > 0;
  if (json) ctx.out.json({ env, split, hosts: statuses });
  else for (const l of statusText(statuses)) ctx.out.line(l);
  // 2: look at something (a host not reached, a process failed, a stale lock, hosts on two releases).
  return statuses.some(troubled) || split ? 2 : 0;
}
