// What `keel provision` and `keel plan` do: prepare (engine/pipeline.ts: all that can fail
// before a host is touched), run the plans on the hosts under the run lock, report.
import { isAbsolute, join, relative } from 'node:path';
import type { Host, Inventory } from '../../inventory/types.js';
import { ConfigError } from '../../errors.js';
import { ttyPrompt } from '../../vault/prompt.js';
import { sshConnector } from '../../engine/connector.js';
import { EarlyConnections } from '../../engine/early-connections.js';
import { defaultKnownHostsFile } from '../../ssh/connect.js';
import { runPlans } from '../../engine/run.js';
import { provisionAroundBatch } from '../../deploy/lb.js';
import { newLockOwner } from '../../engine/lock.js';
import { summarize, type RunReport } from '../../engine/results.js';
import { RunLog } from '../../report/log.js';
import { createProgress, failedOutput, type Progress } from '../../report/progress.js';
import { formatRecap } from '../../report/recap.js';
import { oneLine } from '../../report/one-line.js';
import { runJson } from '../../report/json.js';
import { EXIT_HOSTS, EXIT_OK } from '../exit.js';
import type { CliContext } from '../context.js';
import { prepareFromOptions } from '../prepare.js';
import { confirm } from '../confirm.js';
import { checkOutput, describeCommand } from '../options.js';
import { trapSignals } from '../signals.js';
import type { ProvisionOptions } from './provision.js';
import { timedAsync } from '../../timing.js';

export async function provision(ctx: CliContext, env: string, o: ProvisionOptions): Promise<number> {
  const json = checkOutput(o);
  // Connect while the run is prepared, unless a prompt comes between (the user may say no)
  // or connecting may record a new host key (which a run that fails to compile must not).
  const early = !asksConfirmation(ctx, o, json) && !o.askBecomePass && !o.acceptNewHostKeys ? new EarlyConnections() : undefined;
  try {
    return await provisionWith(ctx, env, o, json, early);
  } finally {
    early?.close(); // what the run did not take: nothing ran on it
  }
}

function asksConfirmation(ctx: CliContext, o: ProvisionOptions, json: boolean): boolean {
  return !o.check && !o.yes && ctx.interactive && !json && !!process.stdout.isTTY;
}

async function provisionWith(ctx: CliContext, env: string, o: ProvisionOptions, json: boolean, early: EarlyConnections | undefined): Promise<number> {
  const onHosts = early && ((hosts: Host[], inv: Inventory) => early.start(hosts, inv.knownHostsFile ?? defaultKnownHostsFile(), o.forks));
  const prepared = await prepareFromOptions(ctx, env, o, onHosts);
  const { plans, inventory } = prepared;
  // A host without roles (every host of an Ansible INI inventory, which cannot assign them)
  // would be "applied" as 0 resources: say so, and refuse a run with nothing to do at all.
  const empty = plans.filter((p) => p.resources.length === 0);
  for (const p of empty) ctx.out.warn(`note: ${p.host.name} has no roles${o.tags?.length ? ' (or no resources with these tags)' : ''}: nothing to apply on it`);
  if (plans.length === 0 || empty.length === plans.length) {
    throw new ConfigError(
      `nothing to apply: no host of ${env}${o.limit?.length ? ' in --limit' : ''} has a role` +
        `${o.tags?.length ? ' with resources tagged ' + o.tags.join(',') : ''}`,
      { file: shortPath(ctx.root, inventory.file) },
      { hint: noRolesHint(env, inventory, ctx.root) },
    );
  }
  if (asksConfirmation(ctx, o, json)) {
    if (!(await confirm(`Provision ${plans.length} host(s) of ${env} (${plans.map((p) => p.host.name).join(', ')})?`))) {
      ctx.out.warn('aborted: nothing was run.');
      return EXIT_OK;
    }
  }
  let askedPassword: string | undefined;
  if (o.askBecomePass) {
    if (!ctx.interactive) throw new ConfigError('--ask-become-pass needs a terminal; put become_password in the vault instead');
    askedPassword = await ttyPrompt('sudo password: ', { hidden: true });
    ctx.out.redactor.add([askedPassword]);
  }
  const log = new RunLog(ctx.root, o.check ? 'check' : 'provision', env, ctx.out.redactor);
  log.write('start', { env, hosts: plans.map((p) => p.host.name), check: !!o.check, tags: o.tags ?? null });
  const progress = json
    ? null
    : await createProgress(
        ctx.out,
        plans.map((p) => p.host.name),
        !!o.check,
      );
  const started = Date.now();
  const trap = trapSignals(ctx.out, ctx.signal);
  try {
    const results = await runPlans(plans, {
      check: !!o.check,
      diff: !!o.diff,
      forks: o.forks,
      groups: inventory.groups,
      serial: o.serial,
      // In batches, each one out of its load balancer (role lb) while it applies.
      aroundBatch: provisionAroundBatch(plans, (m) => ctx.out.warn(`note: ${m}`)),
      lock: o.check ? undefined : newLockOwner(describeCommand('provision', env, o)),
      signal: trap.signal,
      connect: sshConnector(prepared, {
        early,
        acceptNewHostKeys: o.acceptNewHostKeys,
        askedPassword,
        onNewHostKey: (m) => ctx.out.warn(m),
      }),
      onPhase: (h, p) => {
        progress?.phase(h, p);
        log.write('phase', { host: h, phase: p });
      },
      onResult: (h, r) => {
        progress?.result(h, r);
        log.resource(h, r);
      },
      // -v: each step's output lines as they come, where the display can show them.
      streamOutput: !!o.verbose && !!progress?.shows.output,
      onStep: (h, st) => {
        progress?.step(h, st);
        if (st.state === 'running') log.write('step', { host: h, id: st.id, done: st.done, total: st.total });
        else if (st.state === 'output') log.write('output', { host: h, id: st.id, line: st.line });
      },
      onHostDone: (r) => {
        progress?.hostDone(r);
        log.write('host', {
          host: r.name,
          ok: r.ok,
          changed: r.changed,
          failed: r.failed,
          unreachable: r.unreachable,
          error: r.error ?? null,
          roundTrips: r.roundTrips,
          durationMs: r.durationMs,
        });
      },
    });
    return await timedAsync('report', async () => {
      await progress?.close();
      const report = summarize(env, !!o.check, results, Date.now() - started);
      log.write('end', { ok: report.ok, changed: report.changed, failed: report.failed, unreachable: report.unreachable, durationMs: report.durationMs });
      if (json) ctx.out.json(runJson(report));
      else await printReport(ctx, report, o, log.file, progress);
      return report.failed > 0 || report.unreachable > 0 || report.hosts.some((h) => h.error) ? EXIT_HOSTS : EXIT_OK;
    });
  } catch (err) {
    log.aborted(err);
    throw err;
  } finally {
    trap.dispose();
    log.close();
  }
}

async function printReport(ctx: CliContext, report: RunReport, o: ProvisionOptions, logFile: string, progress: Progress | null): Promise<void> {
  const out = ctx.out;
  // The diff library is loaded only when diffs are shown.
  const formatDiff = o.diff ? (await import('../../report/diff.js')).formatDiff : null;
  for (const h of report.hosts) {
    const diffs = formatDiff ? h.resources.filter((r) => r.diff && r.status === 'changed') : [];
    if (diffs.length && report.hosts.length > 1) out.line(`===== ${h.name} =====`);
    for (const r of h.resources) {
      if (o.verbose && (r.status === 'ok' || r.status === 'skipped')) out.line(`${h.name}  ${r.status.padEnd(12)} ${oneLine(r.id)}  ${oneLine(r.reason)}`);
    }
    for (const r of diffs) out.line(formatDiff!(r.diff!));
    for (const n of h.notes ?? []) out.line(`${h.name}: note: ${n}`);
  }
  // Failures are printed once: here, unless the live progress already showed them.
  const shown = progress?.shows ?? { hostErrors: false, resourceFailures: false };
  const failures = report.hosts.filter((h) => (h.error && !shown.hostErrors) || (h.failed && !shown.resourceFailures));
  if (failures.length) {
    out.line('');
    for (const h of failures) {
      if (h.error && !shown.hostErrors) out.line(`${h.name}: ${h.unreachable ? 'UNREACHABLE' : 'FAILED'}: ${h.error}`);
      if (shown.resourceFailures) continue;
      for (const r of h.resources.filter((x) => x.status === 'failed')) {
        out.line(`${h.name}: FAILED ${r.id}: ${r.reason}`);
        if (r.output) out.line(failedOutput(r.output));
      }
    }
  }
  out.line('');
  for (const l of formatRecap(report)) out.line(l);
  out.line(`log: ${logFile}`);
}

function shortPath(root: string, file: string): string {
  const r = relative(root, file);
  return r.startsWith('..') || isAbsolute(r) ? file : r;
}

/** How to give hosts roles: in the YAML inventory, or, for an Ansible INI inventory (which
 *  cannot), from a YAML inventory that names it with `ansible_inventory:` and gives its groups
 *  roles. An INI in inventories/ must move out first: two inventories for one env are refused. */
function noRolesHint(env: string, inventory: Inventory, root: string): string {
  if (inventory.format !== 'ini') return "give hosts roles in the inventory (a group's `roles:` or a host's)";
  const ini = shortPath(root, inventory.file);
  const inInventories = /^inventories\//.test(ini);
  const keepAt = inInventories ? `ops/ansible/hosts_${env}` : ini;
  const groups = inventory.groups.map((g) => g.name).filter((g) => g !== 'all' && g !== 'ungrouped');
  const example = groups.length
    ? groups
        .slice(0, 2)
        .map((g) => `${g}: {roles: [base, app, nginx]}`)
        .join(', ')
    : 'web: {roles: [base, app, nginx]}';
  return (
    'an Ansible INI inventory cannot give hosts roles: keep it as it is' +
    (inInventories ? ` (moved out of inventories/, e.g. to ${keepAt}: one environment has one inventory)` : '') +
    ` and write inventories/${env}.yaml naming it: ansible_inventory: ${JSON.stringify(relative(join(root, 'inventories'), join(root, keepAt)))}, ` +
    `groups: {${example}} (README, "Coming from Ansible")`
  );
}
