// `keel deploy`, `rollback`, `releases`, `maintenance`, `backup`, `backups`: the options. What
// they do is in deploy-run.ts, loaded only when one of them runs.
import type { Command } from 'commander';
import type { CliContext, Runner } from '../context.js';
import { duration, hostOptions, type HostOptions } from '../options.js';

const deployRun = () => import('./deploy-run.js');

export interface DeployOptions extends HostOptions {
  branch?: string;
  catchUp?: boolean;
  ref?: string;
  maintenance?: boolean;
  check?: boolean;
  yes?: boolean;
  allowSplit?: boolean;
  /** --wait-lock, in ms. */
  waitLock?: number;
  allowOlder?: boolean;
}

export function registerDeploy(program: Command, ctx: CliContext, run: Runner): void {
  hostOptions(
    program
      .command('deploy <env>')
      .description(
        'deploy a branch: lock, verified pg_dump, build the release, migrate, switch every host at once, health check; ' +
          'any failure leaves or puts back the old release',
      )
      .option('-b, --branch <branch>', 'the branch to deploy (resolved to a commit here, once, for every host)'),
  )
    .option('--catch-up', 'no new release: the hosts without one (new in their group) get the release the others run, and nothing else changes')
    .option('--ref <sha>', 'a commit of --branch instead of its tip')
    .option('--maintenance', 'the maintenance page from the migration to the health check (migrations that are not backward compatible)')
    .option('--check', 'show what would be deployed (commit, files changed, whether requirements or migrations changed); touch nothing')
    .option('--allow-split', 'with --limit: deploy to only part of the hosts that run the app, leaving the others on the release they run')
    .option(
      '--wait-lock <duration>',
      "when another run holds a host's lock, wait for it (saying whom for) up to this long (90s, 10m, 1h) instead of failing at once",
      duration('--wait-lock'),
    )
    .option('--allow-older', 'deploy even a commit that the live one already contains (by default refused: a retried CI job must not roll back)')
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(run(async (env: string, o: DeployOptions) => (await deployRun()).deploy(ctx, env, o)));

  hostOptions(program.command('rollback <env>').description('switch every host back to the previous release (or --to), reload, health check'))
    .option('--to <release>', 'a release id (keel releases lists them)')
    .option('--allow-split', 'with --limit: roll back only part of the hosts that run the app')
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(run(async (env: string, o: HostOptions & { to?: string; yes?: boolean; allowSplit?: boolean }) => (await deployRun()).rollback(ctx, env, o)));

  hostOptions(program.command('releases <env>').description('the live release of each host, the releases kept, the ones that failed')).action(
    run(async (env: string, o: HostOptions) => (await deployRun()).releases(ctx, env, o)),
  );

  hostOptions(
    program
      .command('maintenance <on|off|status> <env>')
      .description('the maintenance page (role nginx) on every web host: every request gets 503 with it, except the health path; status: whether it is on'),
  ).action(run(async (state: string, env: string, o: HostOptions) => (await deployRun()).maintenance(ctx, state, env, o)));

  const backup = hostOptions(
    program.command('backup <env>').description('a verified pg_dump of the database now (keel backup restore <env> <dump> to restore one)'),
  ).action(run(async (env: string, o: HostOptions) => (await deployRun()).backup(ctx, env, o)));
  hostOptions(backup.command('restore <env> <dump>').description('restore a dump into the database (asks first; --yes for scripts); never automatic'))
    .option('-y, --yes', 'restore without asking')
    .action(run(async (env: string, dump: string, o: HostOptions & { yes?: boolean }) => (await deployRun()).restore(ctx, env, dump, o)));

  hostOptions(program.command('backups <env>').description('the verified dumps on the backup host, newest first')).action(
    run(async (env: string, o: HostOptions) => (await deployRun()).backups(ctx, env, o)),
  );
}
