// `keel inventory <env>`: the resolved hosts, groups and variables, validated, secrets masked.
import type { Command } from 'commander';
import { collect, list } from '../options.js';
import type { CliContext, Runner } from '../context.js';

export function registerInventory(program: Command, ctx: CliContext, run: Runner): void {
  program
    .command('inventory <env>')
    .description('show the resolved hosts, groups and variables (validated; secrets masked)')
    .option('-i, --inventory <file>', 'inventory file instead of inventories/<env>.yaml|.ini')
    .option('-l, --limit <hosts>', 'only these hosts or groups', list)
    .option('-e, --extra-vars <key=value|@file.yaml>', 'a variable, as provision takes it (repeatable)', collect, [])
    .option('--output <format>', 'yaml or json', 'yaml')
    .action(
      run(async (env: string, o: { inventory?: string; limit?: string[]; extraVars?: string[]; output?: string }) => {
        const [{ prepareFromOptions }, { inventoryToJSON }, { default: YAML }] = await Promise.all([
          import('../prepare.js'),
          import('../../inventory/load.js'),
          import('yaml'),
        ]);
        // The same validation as provision (inventory, vault, roles, templates), nothing run.
        const { inventory, plans } = await prepareFromOptions(ctx, env, o);
        const doc = inventoryToJSON(inventory, (v) => ctx.out.redactor.maskValue(v)) as { hosts: Record<string, { vars: unknown }> };
        // Each host's variables as its roles will see them: resolved, with role defaults.
        for (const plan of plans) {
          const { secrets: _s, host: _h, env: _e, inventory_hostname: _n, role_instance: _i, ...vars } = plan.vars;
          const entry = doc.hosts[plan.host.name];
          if (entry) entry.vars = ctx.out.redactor.maskValue(Object.fromEntries(Object.entries(vars).sort(([a], [b]) => a.localeCompare(b))));
        }
        if (o.output === 'json') ctx.out.json(doc);
        else ctx.out.line(YAML.stringify(doc).trimEnd());
        return 0;
      }),
    );
}
