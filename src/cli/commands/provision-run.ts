// What `keel provision` and `keel plan` do: prepare (inventory, vault, roles, compile: all that
// can fail before a host is touched), run the plans on the hosts, report.
import { createInterface } from 'node:readline/promises';
import { ConfigError, ConfigErrors, KeelError } from '../../errors.js';
import { loadInventory, selectHosts } from '../../inventory/load.js';
import type { Host, Inventory, Vars } from '../../inventory/types.js';
import { loadSecrets } from '../../vault/index.js';
import { ttyPrompt } from '../../vault/prompt.js';
import { RoleLibrary } from '../../engine/roles.js';
import { compileHost } from '../../engine/compile.js';
import type { HostPlan } from '../../engine/plan.js';
import { runPlans } from '../../engine/run.js';
import { summarize, type RunReport } from '../../engine/results.js';
import { connect, defaultKnownHostsFile } from '../../ssh/connect.js';
import { RunLog } from '../../report/log.js';
import { createProgress } from '../../report/progress.js';
import { formatRecap } from '../../report/recap.js';
import { EXIT_HOSTS, EXIT_OK } from '../exit.js';
import type { CliContext } from '../context.js';
import type { ProvisionOptions } from './provision.js';

export interface PreparedRun {
  inventory: Inventory;
  hosts: Host[];
  plans: HostPlan[];
  secrets: Vars;
}

/** Everything that can fail before a host is touched: inventory, vault, roles, templates. */
export async function prepare(ctx: CliContext, env: string, o: ProvisionOptions): Promise<PreparedRun> {
  const library = RoleLibrary.forProject(ctx.root);
  const inventory = await loadInventory({
    root: ctx.root,
    env,
    inventoryFile: o.inventory,
    extraVars: parseExtraVars(o.extraVars ?? []),
    isKnownRole: (n) => library.has(n),
    knownRoles: library.names(),
  });
  const secrets = (await loadSecrets(ctx.root, env, { interactive: ctx.interactive })) ?? {};
  ctx.out.redactor.add([secrets]);
  const hosts = selectHosts(inventory, o.limit);
  const errors: ConfigError[] = [];
  const plans: HostPlan[] = [];
  for (const host of hosts) {
    try {
      plans.push(compileHost(host, library, { env, secrets, tags: o.tags, root: ctx.root }));
    } catch (err) {
      if (err instanceof ConfigErrors) errors.push(...err.errors.map((e) => prefixHost(e, host.name)));
      else if (err instanceof ConfigError) errors.push(prefixHost(err, host.name));
      else throw err;
    }
  }
  if (errors.length) throw errors.length === 1 ? errors[0]! : new ConfigErrors(dedupe(errors));
  return { inventory, hosts, plans, secrets };
}

export async function provision(ctx: CliContext, env: string, o: ProvisionOptions): Promise<number> {
  const json = o.output === 'json';
  if (o.output && o.output !== 'json' && o.output !== 'text') throw new ConfigError(`--output must be text or json, got "${o.output}"`);
  const prepared = await prepare(ctx, env, o);
  const { plans, inventory } = prepared;
  if (!o.check && !o.yes && ctx.interactive && !json && process.stdout.isTTY) {
    if (!(await confirm(`Provision ${plans.length} host(s) of ${env} (${plans.map((p) => p.host.name).join(', ')})?`))) {
      ctx.out.warn('aborted: nothing was run.');
      return EXIT_OK;
    }
  }
  const log = new RunLog(ctx.root, o.check ? 'check' : 'provision', env, ctx.out.redactor);
  log.write('start', { env, hosts: plans.map((p) => p.host.name), check: !!o.check, tags: o.tags ?? null });
  const progress = json ? null : await createProgress(ctx.out, plans.map((p) => p.host.name), !!o.check);
  const started = Date.now();
  const knownHostsFile = inventory.knownHostsFile ?? defaultKnownHostsFile();
  let askedPassword: string | undefined;
  if (o.askBecomePass) {
    if (!ctx.interactive) throw new ConfigError('--ask-become-pass needs a terminal; put become_password in the vault instead');
    askedPassword = await ttyPrompt('sudo password: ', { hidden: true });
    ctx.out.redactor.add([askedPassword]);
  }
  try {
    const results = await runPlans(plans, {
      check: !!o.check,
      diff: !!o.diff,
      forks: o.forks,
      groups: inventory.groups,
      connect: (plan) =>
        connect({
          hostName: plan.host.name,
          connection: plan.host.connection,
          knownHostsFile,
          acceptNewHostKeys: !!o.acceptNewHostKeys,
          becomePassword: askedPassword ?? becomePassword(plan, prepared.secrets),
        }),
      onPhase: (h, p) => {
        progress?.phase(h, p);
        log.write('phase', { host: h, phase: p });
      },
      onResult: (h, r) => {
        progress?.result(h, r);
        log.write('resource', { host: h, ...r, diff: undefined });
      },
      onHostDone: (r) => {
        progress?.hostDone(r);
        log.write('host', { host: r.name, ok: r.ok, changed: r.changed, failed: r.failed, unreachable: r.unreachable, error: r.error ?? null, roundTrips: r.roundTrips, durationMs: r.durationMs });
      },
    });
    await progress?.close();
    const report = summarize(env, !!o.check, results, Date.now() - started);
    log.write('end', { ok: report.ok, changed: report.changed, failed: report.failed, unreachable: report.unreachable, durationMs: report.durationMs });
    if (json) ctx.out.json(toJson(report));
    else await printReport(ctx, report, o, log.file);
    return report.failed > 0 || report.unreachable > 0 || report.hosts.some((h) => h.error) ? EXIT_HOSTS : EXIT_OK;
  } finally {
    log.close();
  }
}

async function printReport(ctx: CliContext, report: RunReport, o: ProvisionOptions, logFile: string): Promise<void> {
  const out = ctx.out;
  // The diff library is loaded only when diffs are shown.
  const formatDiff = o.diff ? (await import('../../report/diff.js')).formatDiff : null;
  for (const h of report.hosts) {
    for (const r of h.resources) {
      if (o.verbose && (r.status === 'ok' || r.status === 'skipped')) out.line(`${h.name}  ${r.status.padEnd(12)} ${r.id}  ${r.reason}`);
      if (formatDiff && r.diff && r.status === 'changed') out.line(formatDiff(r.diff));
    }
  }
  const failures = report.hosts.filter((h) => h.error || h.failed);
  if (failures.length) {
    out.line('');
    for (const h of failures) {
      if (h.error) out.line(`${h.name}: ${h.unreachable ? 'UNREACHABLE' : 'FAILED'}: ${h.error}`);
      for (const r of h.resources.filter((x) => x.status === 'failed')) {
        out.line(`${h.name}: FAILED ${r.id}: ${r.reason}`);
        if (r.output) out.line(r.output.replace(/\s+$/, '').split('\n').slice(-15).map((l) => `    | ${l}`).join('\n'));
      }
    }
  }
  out.line('');
  for (const l of formatRecap(report)) out.line(l);
  out.line(`log: ${logFile}`);
}

/** The documented JSON shape (extra fields are additions, never renames). */
export function toJson(report: RunReport): object {
  return {
    env: report.env,
    check: report.check,
    ok: report.ok,
    changed: report.changed,
    failed: report.failed,
    unreachable: report.unreachable,
    durationMs: report.durationMs,
    hosts: report.hosts.map((h) => ({
      name: h.name,
      ok: h.ok,
      changed: h.changed,
      failed: h.failed,
      unreachable: h.unreachable,
      error: h.error ?? null,
      roundTrips: h.roundTrips,
      durationMs: h.durationMs,
      resources: h.resources.map((r) => ({
        id: r.id,
        status: r.status,
        reason: r.reason,
        ...(r.uncertain ? { uncertain: true } : {}),
        ...(r.output ? { output: r.output, code: r.code } : {}),
      })),
    })),
  };
}

function becomePassword(plan: HostPlan, secrets: Vars): string | undefined {
  const c = plan.host.connection;
  if (!c.become) return undefined;
  const name = c.becomePasswordVar ?? 'become_password';
  const v = plan.vars[name] ?? secrets[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function parseExtraVars(items: string[]): Vars {
  const vars: Vars = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--extra-vars expects key=value, got "${item}"`);
    const key = item.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new ConfigError(`--extra-vars: "${key}" is not a valid variable name`);
    const raw = item.slice(eq + 1);
    if (/^\s*[[{]/.test(raw)) {
      try {
        vars[key] = JSON.parse(raw);
        continue;
      } catch {
        throw new ConfigError(`--extra-vars ${key}: a value starting with [ or { must be JSON`);
      }
    }
    vars[key] = /^-?\d+$/.test(raw) ? Number(raw) : raw === 'true' ? true : raw === 'false' ? false : raw;
  }
  return vars;
}

function prefixHost(e: ConfigError, host: string): ConfigError {
  return e.message.includes(host) ? e : new ConfigError(`${e.message} (host ${host})`, undefined, { cause: e, hint: e.hint });
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = e.message.replace(/ \(host [^)]+\)$/, '');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
