// keel's command line. The only exit point is `main`'s return value (bin/keel.js sets
// process.exitCode from it); commands throw typed errors that cli/exit.ts maps to codes.
import { Command } from 'commander';
import { InterruptedError } from '../errors.js';
import { consoleOutput } from '../report/output.js';
import { exitCodeFor } from './exit.js';
import type { CliContext, CommandResult } from './context.js';
import { registerCommands } from './commands.js';
import { mainEnds, mainStarts } from '../timing.js';

/** Variables that hold keys themselves (not paths to them). Passphrases are not among them:
 *  one may be a plain word, and masking it would garble keel's own messages. */
const SECRET_ENV = ['KEEL_AGE_IDENTITY', 'KEEL_SSH_PRIVATE_KEY'];

/** CI=true (GitHub Actions, GitLab CI and most others set it). */
export function inCi(env: NodeJS.ProcessEnv): boolean {
  return !!env.CI && env.CI !== 'false' && env.CI !== '0';
}

export async function main(argv: string[], overrides: Partial<CliContext> = {}): Promise<number> {
  mainStarts();
  const ctx: CliContext = {
    root: process.env.KEEL_ROOT ?? process.cwd(),
    // In CI nothing may wait for an answer, even when the runner gives keel a terminal.
    interactive: Boolean(process.stdin.isTTY) && !inCi(process.env),
    ...overrides,
    // Only when none is given: consoleOutput() adds listeners to process.stdout/stderr, which
    // would pile up with each in-process run (tests, one main() per command).
    out: overrides.out ?? consoleOutput(),
  };
  // keel's own secrets from the environment are masked like the vault's, should one ever be printed.
  ctx.out.redactor.add(SECRET_ENV.map((k) => process.env[k]).filter(Boolean));
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
