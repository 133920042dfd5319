import type { Command } from 'commander';
import type { CliContext, Runner } from './context.js';
import { registerProvision } from './commands/provision.js';
import { registerInventory } from './commands/inventory.js';
import { registerTarget } from './commands/target.js';
import { registerSecretsCommands } from './commands/secrets.js';
import { registerLock } from './commands/lock.js';
import { registerDeploy } from './commands/deploy.js';
import { registerExec } from './commands/exec.js';
import { registerHistory } from './commands/history.js';
import { registerLogs } from './commands/logs.js';
import { registerStatus } from './commands/status.js';
import { registerSsh } from './commands/ssh.js';

/** Every subcommand is registered here, from its own module. */
export function registerCommands(program: Command, ctx: CliContext, run: Runner): void {
  registerProvision(program, ctx, run);
  registerInventory(program, ctx, run);
  registerTarget(program, ctx, run);
  registerSecretsCommands(program, ctx, run);
  registerLock(program, ctx, run);
  registerDeploy(program, ctx, run);
  registerExec(program, ctx, run);
  registerHistory(program, ctx, run);
  registerLogs(program, ctx, run);
  registerStatus(program, ctx, run);
  registerSsh(program, ctx, run);
}
