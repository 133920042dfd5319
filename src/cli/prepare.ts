// The controller pipeline (inventory, vault, roles, compile) as every command that acts on an
// environment's hosts starts it: from its host options, in this CLI's context.
import { prepareRun, type PreparedRun } from '../engine/pipeline.js';
import type { CliContext } from './context.js';
import type { HostOptions } from './options.js';

export function prepareFromOptions(
  ctx: CliContext,
  env: string,
  o: Pick<HostOptions, 'inventory' | 'extraVars' | 'limit'> & { tags?: string[] },
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
  });
}
