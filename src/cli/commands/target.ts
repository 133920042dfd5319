// `keel target up [--hosts N] | down | status`: local Docker targets for trying keel.
import type { Command } from 'commander';
import { relative } from 'node:path';
import { ConfigError } from '../../errors.js';
import type { CliContext } from '../context.js';
import type { Runner } from '../context.js';

/** The Docker target code, loaded when a target command runs. */
const docker = () => import('../../target/docker.js');

export function registerTarget(program: Command, ctx: CliContext, run: Runner): void {
  const target = program.command('target').description('local systemd Debian containers with sshd on 127.0.0.1 (inventory "local")');
  target
    .command('up')
    .description('start targets and write inventories/local.yaml')
    .option('--hosts <n>', 'number of targets', '1')
    .action(run(async (o: { hosts: string }) => {
      const n = Number(o.hosts);
      if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--hosts must be a positive integer, got "${o.hosts}"`);
      const { targetUp } = await docker();
      const r = await targetUp({ root: ctx.root, hosts: n });
      for (const h of r.hosts) ctx.out.line(`${h.name}  ${h.container}  ssh root@127.0.0.1 -p ${h.port}`);
      ctx.out.line(`inventory: ${relative(ctx.root, r.inventoryFile)}  (keel provision local)`);
      return 0;
    }));
  target
    .command('down')
    .description('remove the targets')
    .action(run(async () => {
      const { targetDown } = await docker();
      const r = await targetDown({ root: ctx.root });
      ctx.out.line(r.removed.length ? `removed ${r.removed.join(', ')}` : 'no targets were running');
      return 0;
    }));
  target
    .command('status')
    .description('list the targets')
    .action(run(async () => {
      const { targetStatus } = await docker();
      const r = await targetStatus({ root: ctx.root });
      if (!r.hosts.length) ctx.out.line('no targets (keel target up)');
      for (const h of r.hosts) ctx.out.line(`${h.name}  ${h.container}  ${h.state}  127.0.0.1:${h.port}`);
      return 0;
    }));
}
