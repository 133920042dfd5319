// `keel provision <env>` and `keel plan <env>` (= provision --check --diff): the options.
// What a run does is in provision-run.ts, loaded when the command runs (not for --help or
// the other commands).
import type { Command } from 'commander';
import { KeelError } from '../../errors.js';
import type { CliContext } from '../context.js';
import type { Runner } from '../commands.js';

const provisionRun = () => import('./provision-run.js');

export interface ProvisionOptions {
  limit?: string[];
  tags?: string[];
  check?: boolean;
  diff?: boolean;
  forks?: number;
  output?: 'text' | 'json';
  yes?: boolean;
  inventory?: string;
  extraVars?: string[];
  acceptNewHostKeys?: boolean;
  verbose?: boolean;
  askBecomePass?: boolean;
}

export function registerProvision(program: Command, ctx: CliContext, run: Runner): void {
  const common = (c: Command) =>
    c
      .option('-l, --limit <hosts>', 'only these hosts or groups (comma-separated)', list)
      .option('-t, --tags <tags>', 'only resources with these tags; a role name is a tag (comma-separated)', list)
      .option('--forks <n>', 'hosts to run at once (default: all)', positiveInt)
      .option('--output <format>', 'text or json (one JSON document on stdout)', 'text')
      .option('-i, --inventory <file>', 'inventory file instead of inventories/<env>.yaml|.ini')
      .option('-e, --extra-vars <key=value>', 'a variable, highest precedence (repeatable)', collect, [])
      .option('--accept-new-host-keys', 'trust and record host keys of hosts not yet in known_hosts')
      .option('-K, --ask-become-pass', 'ask for the sudo password (else the variable become_password, e.g. from the vault)')
      .option('-v, --verbose', 'also list resources that were already fine');
  common(program.command('provision <env>').description('apply the roles of an environment\'s hosts'))
    .option('--check', 'only check: report what would change, change nothing')
    .option('--diff', 'show a diff of every changed file')
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(run(async (env: string, o: ProvisionOptions) => (await provisionRun()).provision(ctx, env, o)));
  common(program.command('plan <env>').description('what provision would change, with diffs (= provision --check --diff)'))
    .action(run(async (env: string, o: ProvisionOptions) => (await provisionRun()).provision(ctx, env, { ...o, check: true, diff: true })));
}

export function list(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new KeelError(`expected a positive integer, got "${v}"`);
  return n;
}
