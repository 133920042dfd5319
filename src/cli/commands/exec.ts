// `keel exec <env> [--limit|--all] [-i] [--task name] -- <command...>`: a command in the live
// release as the app user, with the app's environment (src/ops/exec.ts).
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { didYouMean } from '../../suggest.js';
import type { HostDeploy } from '../../deploy/config.js';
import type { CliContext, Runner } from '../context.js';
import { checkOutput, hostOptions, type HostOptions } from '../options.js';

interface ExecOptions extends HostOptions {
  all?: boolean;
  interactive?: boolean;
  task?: string;
}

export function registerExec(program: Command, ctx: CliContext, run: Runner): void {
  hostOptions(
    program
      .command('exec <env> [command...]')
      .description(
        'run a command in the live release as the app user, with the env file, $PYTHON and the virtualenv: ' +
          'on the migrate host, or --limit hosts|groups, or --all; the words after -- are passed as they are',
      )
      .option('--all', 'on every host with role deploy (output prefixed by host)')
      .option('-i, --interactive', 'a terminal on the host: stdin, window size and Ctrl-C go to the command (one host)')
      .option('--task <name>', 'a command of the inventory (deploy_tasks: {name: "shell line"}) instead of words'),
    { inventoryShort: false },
  ).action(run(async (env: string, words: string[], o: ExecOptions) => execCommand(ctx, env, words, o)));
}

async function execCommand(ctx: CliContext, env: string, words: string[], o: ExecOptions): Promise<number> {
  const json = checkOutput(o);
  if (o.task && words.length) throw new ConfigError(`--task ${o.task} and a command (${words.join(' ')}) both say what to run: give one of them`);
  if (!o.task && !words.length) throw new ConfigError('nothing to run: keel exec <env> -- <command...>, or --task <name>');
  if (o.interactive && json) throw new ConfigError('-i (a terminal) and --output json do not go together');
  const [{ prepareOps, needDeploy }, { execHosts }, { execOnHosts, execInteractive }] = await Promise.all([
    import('../ops.js'),
    import('../../ops/hosts.js'),
    import('../../ops/exec.js'),
  ]);
  const p = await prepareOps(ctx, env, o);
  const hosts = execHosts(needDeploy(p, 'exec'), p.prepared.inventory, o);
  const what = o.task ? { task: task(hosts[0]!, o.task) } : { words };

  if (o.interactive) {
    if (hosts.length !== 1) throw new ConfigError(`-i needs one host, and ${hosts.map((h) => h.name).join(', ')} are selected: --limit one of them`);
    const { processTerminal } = await import('../../ops/terminal.js');
    return (await execInteractive(hosts[0]!, what, p.link, processTerminal())).code;
  }

  const { commandTrap } = await import('../signals.js');
  const trap = commandTrap(ctx, 'SIGINT goes to the command on each host (Ctrl-C again exits at once)');
  const width = Math.max(...hosts.map((h) => h.name.length));
  const many = hosts.length > 1;
  try {
    const results = await execOnHosts({
      hosts,
      run: what,
      link: p.link,
      mask: p.mask,
      signal: trap.signal,
      onLine: json
        ? undefined
        : (host, stream, line) => {
            const text = many ? `${host.padEnd(width)} | ${line}` : line;
            if (stream === 'stdout') ctx.out.line(text);
            else ctx.out.warn(text);
          },
    });
    if (json) ctx.out.json({ env, ...(o.task ? { task: o.task } : { command: words }), hosts: results });
    else {
      for (const r of results) {
        if (r.error) ctx.out.warn(`error: ${r.host}: ${r.error}`);
        else if (many || r.code !== 0) ctx.out.warn(`${r.host}: exit ${r.code ?? `on signal ${r.signal ?? '?'}`}`);
      }
    }
    // One host: its command's exit code, as ssh gives it; several: 2 if any failed.
    if (!many) {
      const r = results[0]!;
      if (r.error) return 2;
      const { exitCodeOf } = await import('../../ops/terminal.js');
      return exitCodeOf({ code: r.code, ...(r.signal ? { signal: r.signal } : {}) });
    }
    return results.every((r) => r.code === 0 && !r.error) ? 0 : 2;
  } finally {
    trap.dispose();
  }
}

/** A task's shell line from the host's deploy_tasks. */
function task(h: HostDeploy, name: string): string {
  const tasks = (h.plan.vars.deploy_tasks ?? {}) as Record<string, string>;
  const line = tasks[name];
  if (typeof line === 'string') return line;
  const known = Object.keys(tasks);
  throw new ConfigError(
    `no task "${name}" in deploy_tasks${didYouMean(name, known)}; ${known.length ? `tasks: ${known.join(', ')}` : 'the inventory defines none'}`,
    undefined,
    { hint: 'define it in the inventory: vars: {deploy_tasks: {initdata: "python -m tools.initdata --no-input"}}' },
  );
}
