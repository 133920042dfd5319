// keel's command line. The only exit point is `main`'s return value (bin/keel.js sets
// process.exitCode from it); commands throw typed errors that cli/exit.ts maps to codes.
import { Command } from 'commander';
import { InterruptedError } from '../errors.js';
import { consoleOutput } from '../report/output.js';
import { exitCodeFor } from './exit.js';
import type { CliContext, CommandResult } from './context.js';
import { registerCommands } from './commands.js';
import { mainEnds, mainStarts } from '../timing.js';

export async function main(argv: string[], overrides: Partial<CliContext> = {}): Promise<number> {
  mainStarts();
  const ctx: CliContext = {
    root: process.env.KEEL_ROOT ?? process.cwd(),
    interactive: Boolean(process.stdin.isTTY),
    ...overrides,
    // Only when none is given: consoleOutput() adds listeners to process.stdout/stderr, which
    // would pile up with each in-process run (tests, one main() per command).
    out: overrides.out ?? consoleOutput(),
  };
  let code = 0;
  const program = new Command('keel')
    .description('Agentless provisioning and deployment over SSH')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (t) => ctx.out.line(t.trimEnd()), writeErr: (t) => ctx.out.warn(t.trimEnd()) })
    .showHelpAfterError('(run keel --help for usage)');
  const run =
    (fn: (...args: any[]) => Promise<CommandResult>) =>
    async (...args: any[]) => {
      code = (await fn(...args)) ?? 0;
    };
  registerCommands(program, ctx, run);
  try {
    await program.parseAsync(argv);
    // A signal that came once the work was done: not a success either (130 or 143).
    if (ctx.signal?.aborted && code === 0 && !ctx.signalPassedOn) {
      throw new InterruptedError(ctx.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', ['the run had finished when it came: its results are above']);
    }
    return code;
  } catch (err) {
    return exitCodeFor(err, ctx.out);
  } finally {
    for (const c of ctx.cleanups ?? []) c();
    mainEnds();
  }
}
