// `keel provision <env>` and `keel plan <env>` (= provision --check --diff): the options.
// What a run does is in provision-run.ts, loaded when the command runs (not for --help or
// the other commands).
import { InvalidArgumentError, type Command } from 'commander';
import type { CliContext, Runner } from '../context.js';
import { hostOptions, list, type HostOptions } from '../options.js';
import { timedAsync } from '../../timing.js';

const provisionRun = () => timedAsync('module_load', () => import('./provision-run.js'));

export interface ProvisionOptions extends HostOptions {
  tags?: string[];
  check?: boolean;
  diff?: boolean;
  yes?: boolean;
  serial?: number | string;
}

function serialOption(v: string): number | string {
  if (/^[1-9][0-9]*$/.test(v)) return Number(v);
  if (/^([1-9][0-9]?|100)%$/.test(v)) return v;
  throw new InvalidArgumentError(`--serial takes a count (1, 2...) or a percentage (25%), got "${v}"`);
}

export function registerProvision(program: Command, ctx: CliContext, run: Runner): void {
  const tags = (c: Command) => c.option('-t, --tags <tags>', 'only resources with these tags; a role name is a tag (comma-separated)', list);
  tags(hostOptions(program.command('provision <env>').description("apply the roles of an environment's hosts")))
    .option('--check', 'only check: report what would change, change nothing (takes no lock)')
    .option('--diff', 'show a diff of every changed file')
    .option(
      '--serial <n|n%>',
      "hosts applied at a time (a count or a percentage), instead of the groups' serial; each batch out of its load balancer (role lb) meanwhile",
      serialOption,
    )
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(run(async (env: string, o: ProvisionOptions) => (await provisionRun()).provision(ctx, env, o)));
  tags(hostOptions(program.command('plan <env>').description('what provision would change, with diffs (= provision --check --diff)'))).action(
    run(async (env: string, o: ProvisionOptions) => (await provisionRun()).provision(ctx, env, { ...o, check: true, diff: true })),
  );
}
