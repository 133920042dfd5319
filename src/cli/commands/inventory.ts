// `keel inventory <env>`: the resolved hosts, groups and variables, validated, secrets masked;
// with --explain, where each value comes from (inventory/explain.ts).
import type { Command } from 'commander';
import { collect, list } from '../options.js';
import type { CliContext, Runner } from '../context.js';

interface InventoryOptions {
  inventory?: string;
  limit?: string[];
  extraVars?: string[];
  output?: string;
  explain?: boolean;
}

export function registerInventory(program: Command, ctx: CliContext, run: Runner): void {
  program
    .command('inventory <env>')
    .description('show the resolved hosts, groups and variables (validated; secrets masked)')
    .option('-i, --inventory <file>', 'inventory file instead of inventories/<env>.yaml|.ini')
    .option('-l, --limit <hosts>', 'only these hosts or groups', list)
    .option('-e, --extra-vars <key=value|@file.yaml>', 'a variable, as provision takes it (repeatable)', collect, [])
    .option('--output <format>', 'yaml or json (text or json with --explain)', 'yaml')
    .option('--explain', "where each variable's value comes from (file:line, the Ansible tree's layers included), and what keel cannot evaluate")
    .action(
      run(async (env: string, o: InventoryOptions) => {
        if (o.explain) return explain(ctx, env, o);
        const [{ prepareFromOptions }, { inventoryToJSON }, { MASK }, { default: YAML }, { byRelease }] = await Promise.all([
          import('../prepare.js'),
          import('../../inventory/load.js'),
          import('../../report/redact.js'),
          import('yaml'),
          import('../../engine/variants.js'),
        ]);
        // The same validation as provision (inventory, vault, roles, templates), nothing run.
        const { inventory, plans } = await prepareFromOptions(ctx, env, o);
        const doc = inventoryToJSON(inventory, (v) => ctx.out.redactor.maskValue(v)) as { hosts: Record<string, { vars: unknown }> };
        // Each host's variables as its roles will see them: resolved, with role defaults.
        for (const plan of plans) {
          const { secrets: _s, host: _h, env: _e, inventory_hostname: _n, role_instance: _i, facts: _f, group_members: _g, ...plain } = plan.vars;
          // A value that depends on the host's release: each release's (the probe picks it).
          const vars: Record<string, unknown> = { ...plain, ...byRelease(plan) };
          // A value decrypted from Ansible Vault is masked whole, whatever its type.
          for (const name of plan.host.secretVars ?? []) if (name in vars) vars[name] = MASK;
          const entry = doc.hosts[plan.host.name];
          if (entry) entry.vars = ctx.out.redactor.maskValue(Object.fromEntries(Object.entries(vars).sort(([a], [b]) => a.localeCompare(b))));
        }
        if (o.output === 'json') ctx.out.json(doc);
        else ctx.out.line(YAML.stringify(doc).trimEnd());
        return 0;
      }),
    );
}

/** --explain: the inventory and the check of its variables, without compiling roles, so that it
 *  also shows an inventory that does not compile yet; the check's errors come after it. */
async function explain(ctx: CliContext, env: string, o: InventoryOptions): Promise<number> {
  const [{ loadChecked }, { displayPath, selectHosts }, { explainInventory, explainText }, { throwIfAny }] = await Promise.all([
    import('../../engine/pipeline.js'),
    import('../../inventory/load.js'),
    import('../../inventory/explain.js'),
    import('../../errors.js'),
  ]);
  const { inventory, varCheck } = await loadChecked({
    root: ctx.root,
    env,
    inventoryFile: o.inventory,
    extraVars: o.extraVars,
    interactive: ctx.interactive,
    redactor: ctx.out.redactor,
    notice: (m) => ctx.out.warn(m),
  });
  for (const w of varCheck.warnings) ctx.out.warn(w);
  const report = explainInventory(
    inventory,
    selectHosts(inventory, o.limit),
    (v) => ctx.out.redactor.maskValue(v),
    (abs) => displayPath(ctx.root, abs),
  );
  if (o.output === 'json') ctx.out.json(report);
  else ctx.out.line(explainText(report));
  throwIfAny(varCheck.errors);
  return 0;
}
