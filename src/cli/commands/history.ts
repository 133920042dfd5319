// `keel history <env>`: every deploy, rollback, restore, maintenance switch and lock release
// the hosts recorded, merged across hosts (src/ops/history.ts).
import type { Command } from 'commander';
import type { CliContext, Runner } from '../context.js';
import { checkOutput, hostOptions, positiveInt, type HostOptions } from '../options.js';

export function registerHistory(program: Command, ctx: CliContext, run: Runner): void {
  hostOptions(program.command('history <env>').description('the deploy history the hosts keep: who deployed, rolled back, restored, switched what, and when'))
    .option('--last <n>', 'entries read from each host (newest)', positiveInt, 20)
    .action(run(async (env: string, o: HostOptions & { last: number }) => history(ctx, env, o)));
}

async function history(ctx: CliContext, env: string, o: HostOptions & { last: number }): Promise<number> {
  const json = checkOutput(o);
  const [{ prepareOps }, { limitPlans }, { readHistories, mergeRuns, describeMoves }] = await Promise.all([
    import('../ops.js'),
    import('../../ops/hosts.js'),
    import('../../ops/history.js'),
  ]);
  const p = await prepareOps(ctx, env, o);
  const plans = limitPlans(p.prepared, o.limit);
  const hosts = await readHistories(plans, async (plan) => (await p.link(plan)).session, o.last, o.forks);
  const runs = mergeRuns(hosts);
  if (json) ctx.out.json({ env, runs, errors: hosts.filter((h) => h.error).map((h) => ({ host: h.host, error: h.error })) });
  else {
    for (const r of runs) {
      const secs = (r.durationMs / 1000).toFixed(1);
      ctx.out.line(`${r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}  ${r.what}  ${r.result}  ${secs} s  by ${r.who}  \`keel ${r.command}\``);
      ctx.out.line(`    ${describeMoves(r)}${r.detail ? `  (${r.detail})` : ''}`);
    }
    if (!runs.length) ctx.out.line('(no history yet: deploys, rollbacks, restores, maintenance switches and lock releases are recorded on the hosts)');
    for (const h of hosts) if (h.error) ctx.out.warn(`${h.host}: UNREACHABLE: ${h.error}`);
  }
  return hosts.some((h) => h.error) ? 2 : 0;
}
