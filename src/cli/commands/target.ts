// `keel target up [name...] [--hosts N] [--distro bookworm|trixie] | down [name...] | status`:
// local Docker targets for trying keel, each with SSH, HTTP and HTTPS on fixed ports of
// 127.0.0.1, on Debian 12 or 13.
import type { Command } from 'commander';
import { relative } from 'node:path';
import { ConfigError } from '../../errors.js';
import type { CliContext } from '../context.js';
import type { Runner } from '../context.js';
import type { TargetHost, TargetStatus } from '../../target/docker.js';
import { checkDistro } from '../../target/registry.js';

/** The Docker target code, loaded when a target command runs. */
const docker = () => import('../../target/docker.js');

export function registerTarget(program: Command, ctx: CliContext, run: Runner): void {
  const target = program
    .command('target')
    .description('local systemd Debian containers with sshd, HTTP and HTTPS on 127.0.0.1 (inventory "local", or `target: NAME` in yours)');
  target
    .command('up')
    .description('start targets (by name, or target1..N) on their recorded ports and write inventories/local.yaml')
    .argument('[names...]', 'target names, e.g. web1 worker1 db1 (default: target1, or target1..N with --hosts)')
    .option('--hosts <n>', 'start target1..N')
    .option('--distro <release>', 'the Debian release of targets made now: bookworm (12, the default) or trixie (13)')
    .action(
      run(async (names: string[], o: { hosts?: string; distro?: string }) => {
        let hosts: number | undefined;
        if (o.hosts !== undefined) {
          hosts = Number(o.hosts);
          if (!Number.isInteger(hosts) || hosts < 1) throw new ConfigError(`--hosts must be a positive integer, got "${o.hosts}"`);
        }
        const distro = o.distro === undefined ? undefined : checkDistro(o.distro);
        const { targetUp } = await docker();
        const r = await targetUp({ root: ctx.root, names, hosts, distro, onNotice: (m) => ctx.out.warn(`note: ${m}`) });
        for (const line of table(r.hosts.map((h) => ({ ...h, state: 'running' })))) ctx.out.line(line);
        ctx.out.line(`inventory: ${relative(ctx.root, r.inventoryFile)}  (keel provision local)`);
        ctx.out.line(`in your own inventory: hosts: {${r.hosts[0]!.name}: {target: ${r.hosts[0]!.name}}}  (see keel target status)`);
        return 0;
      }),
    );
  target
    .command('down')
    .description('remove the targets (all, or the named ones); they come back on the same ports with `up`')
    .argument('[names...]', 'target names (default: all of this project)')
    .option('--forget', 'also drop their records: the ports are given up')
    .action(
      run(async (names: string[], o: { forget?: boolean }) => {
        const { targetDown } = await docker();
        const r = await targetDown({ root: ctx.root, names, forget: o.forget });
        ctx.out.line(r.removed.length ? `removed ${r.removed.join(', ')}` : 'no target containers to remove');
        if (r.forgotten.length) ctx.out.line(`forgot ${r.forgotten.join(', ')} (their ports are given up)`);
        return 0;
      }),
    );
  target
    .command('status')
    .description('list the targets: state, ports, URLs')
    .action(
      run(async () => {
        const { targetStatus } = await docker();
        const r = await targetStatus({ root: ctx.root });
        if (!r.hosts.length) ctx.out.line('no targets (keel target up [name...])');
        for (const line of table(r.hosts)) ctx.out.line(line);
        return 0;
      }),
    );
}

/** One aligned line per target: name, state, how to reach SSH, HTTP and HTTPS. */
function table(hosts: (TargetHost & Pick<TargetStatus, 'state'>)[]): string[] {
  const rows = hosts.map((h) => [
    h.name,
    h.state,
    h.distro,
    h.ports.ssh ? `ssh root@127.0.0.1 -p ${h.ports.ssh}` : 'ssh -',
    h.ports.http ? h.urls.http : '-',
    h.ports.https ? h.urls.https : '-',
  ]);
  const widths = rows.reduce((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), [] as number[]);
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}
