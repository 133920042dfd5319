// The controller pipeline (inventory, vault, roles, compile) as every command that acts on an
// environment's hosts starts it: from its host options, in this CLI's context.
import { InterruptedError } from '../errors.js';
import { prepareRun, type PreparedRun, type RunRequest } from '../engine/pipeline.js';
import type { CliContext } from './context.js';
import type { HostOptions } from './options.js';
import { trapSignals } from './signals.js';

/** The pipeline, with SIGINT/SIGTERM trapped from here on: a Ctrl-C while it reads the vault or
 *  compiles says so and exits 130, and the command's own trap (trapSignals(ctx.out, ctx.signal))
 *  is this one. */
export async function prepareFromOptions(
  ctx: CliContext,
  env: string,
  o: Pick<HostOptions, 'inventory' | 'extraVars' | 'limit'> & { tags?: string[] },
  onHosts?: RunRequest['onHosts'],
): Promise<PreparedRun> {
  if (!ctx.signal) {
    ctx.trap = trapSignals(ctx.out);
    ctx.signal = ctx.trap.signal;
    (ctx.cleanups ??= []).push(ctx.trap.dispose);
  }
  const prepared = await prepare(ctx, env, o, onHosts);
  if (ctx.signal.aborted) {
    throw new InterruptedError(ctx.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', ['stopped while preparing: nothing was run on any host']);
  }
  return prepared;
}

function prepare(
  ctx: CliContext,
  env: string,
  o: Pick<HostOptions, 'inventory' | 'extraVars' | 'limit'> & { tags?: string[] },
  onHosts: RunRequest['onHosts'],
): Promise<PreparedRun> {
  return prepareRun({
    root: ctx.root,
    env,
    inventoryFile: o.inventory,
    extraVars: o.extraVars,
    limit: o.limit,
    tags: o.tags,
    interactive: ctx.interactive,
    redactor: ctx.out.redactor,
    notice: (m) => ctx.out.warn(m),
    onHosts,
  });
}
