// `keel ssh <env> [host]`: an interactive shell on a host, in the live release (src/ops/ssh.ts).
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { didYouMean } from '../../suggest.js';
import type { CliContext, Runner } from '../context.js';
import { hostOptions, type HostOptions } from '../options.js';

export function registerSsh(program: Command, ctx: CliContext, run: Runner): void {
  hostOptions(
    program
      .command('ssh <env> [host]')
      .description(
        "a login shell on a host (default: the migrate host, or the only one) with the inventory's user, key, jump host and known_hosts, in the live release",
      ),
  ).action(run(async (env: string, host: string | undefined, o: HostOptions) => ssh(ctx, env, host, o)));
}

async function ssh(ctx: CliContext, env: string, host: string | undefined, o: HostOptions): Promise<number> {
  const [{ prepareOps }, { appFacts }, { openShell }, { processTerminal }] = await Promise.all([
    import('../ops.js'),
    import('../../ops/hosts.js'),
    import('../../ops/ssh.js'),
    import('../../ops/terminal.js'),
  ]);
  const p = await prepareOps(ctx, env, o);
  const plans = p.prepared.plans;
  const names = plans.map((x) => x.host.name);
  const name = host ?? (plans.length === 1 ? names[0] : p.config?.migrateHost.name);
  if (!name) throw new ConfigError(`which host? keel ssh ${env} <host> (hosts: ${names.join(', ')})`);
  const plan = plans.find((x) => x.host.name === name);
  if (!plan) throw new ConfigError(`no host "${name}" in ${env}${didYouMean(name, names)}; hosts: ${names.join(', ')}`);
  const f = appFacts(plan);
  const dir = f.deploys || plan.host.roles.includes('app') ? `${f.appRoot}/current` : undefined;
  return openShell(plan, dir, p.link, processTerminal());
}
