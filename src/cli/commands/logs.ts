// `keel logs <env> [app|worker|nginx|<daemon>|<timer>] [--limit] [-f] [--since 10m] [--grep RE]`:
// the app's logs of every host, merged and prefixed by host and source (src/ops/logs.ts).
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { didYouMean } from '../../suggest.js';
import type { CliContext, Runner } from '../context.js';
import { checkOutput, hostOptions, type HostOptions } from '../options.js';

interface LogsOptions extends HostOptions {
  follow?: boolean;
  since?: string;
  grep?: string;
  lines?: number;
}

export function registerLogs(program: Command, ctx: CliContext, run: Runner): void {
  hostOptions(
    program
      .command('logs <env> [what]')
      .description(
        "the app's logs on every host, merged by time, each line with its host and source: all of them, or " +
          'app (gunicorn/uvicorn), worker (rq), nginx, or a daemon or timer by name',
      )
      .option('-f, --follow', 'then print new lines as they come, until Ctrl-C')
      .option('--since <when>', 'lines from then on: 30s, 10m, 2h, 1d, or a date and time (2026-12-01T10:00)')
      .option('--grep <regex>', 'only lines matching this extended regular expression')
      .option('-n, --lines <n>', 'the newest N lines of each source (default 50; all of them with --since)', lineCount),
  ).action(run(async (env: string, what: string | undefined, o: LogsOptions) => logs(ctx, env, what, o)));
}

function lineCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`--lines must be a whole number, got "${v}"`);
  return n;
}

async function logs(ctx: CliContext, env: string, what: string | undefined, o: LogsOptions): Promise<number> {
  const json = checkOutput(o);
  if (json && o.follow) throw new ConfigError('--follow prints lines as they come: it does not go with --output json');
  const [{ prepareOps }, { appFacts, limitPlans }, { logNames, logSelection }, { readLogs, parseSince }] = await Promise.all([
    import('../ops.js'),
    import('../../ops/hosts.js'),
    import('../../ops/log-sources.js'),
    import('../../ops/logs.js'),
  ]);
  const since = o.since === undefined ? undefined : parseSince(o.since);
  if (o.since !== undefined && since === undefined) throw new ConfigError(`--since takes 30s, 10m, 2h, 1d or a date and time, got "${o.since}"`);
  const p = await prepareOps(ctx, env, o);
  const plans = limitPlans(p.prepared, o.limit);
  const facts = plans.map(appFacts);
  const hosts = plans.flatMap((plan, i) => {
    const selection = logSelection(facts[i]!, what);
    return selection ? [{ plan, facts: facts[i]!, selection }] : [];
  });
  if (!hosts.length) {
    const names = logNames(facts);
    throw new ConfigError(
      what === undefined
        ? `no host of ${env}${o.limit ? ` in --limit ${o.limit.join(',')}` : ''} runs the app (roles app, nginx, rq, daemon, timer)`
        : `no log called "${what}"${didYouMean(what, names)} on ${plans.map((x) => x.host.name).join(', ')}; there are: ${names.join(', ') || 'none'}`,
    );
  }
  const { commandTrap } = await import('../signals.js');
  const trap = o.follow ? commandTrap(ctx, 'stopping (Ctrl-C again exits at once)') : undefined;
  const width = Math.max(...hosts.map((h) => h.plan.host.name.length));
  const collected: unknown[] = [];
  try {
    const r = await readLogs({
      hosts,
      query: { lines: o.lines ?? (since === undefined ? 50 : undefined), since, grep: o.grep, follow: !!o.follow },
      link: p.link,
      mask: p.mask,
      signal: trap?.signal,
      onLines: (lines) => {
        if (json) collected.push(...lines);
        else for (const l of lines) ctx.out.line(`${l.host.padEnd(width)} ${l.source} | ${l.line}`);
      },
    });
    if (json) ctx.out.json({ env, lines: collected, errors: r.errors });
    else for (const e of r.errors) ctx.out.warn(`${e.host}: ${e.error}`);
    return r.errors.length ? 2 : 0;
  } finally {
    trap?.dispose();
  }
}
