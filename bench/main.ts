// keel vs Ansible (pipelined) vs Ansible+Mitogen, in one run against the same Docker targets.
// `npm run bench -- --help`. What is measured and how: bench/README.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { keelPackageRoot } from '../src/target/docker.js';
import { dockerExecSh } from '../src/target/docker-cli.js';
import { nodeStartNote, settleNodeStart } from './node-start.js';
import { parseOptions, type BenchOptions } from './options.js';
import {
  markdown,
  median,
  newTargets,
  pairedGrowth,
  round,
  table,
  targetLines,
  type BenchResult,
  type Breakdown,
  type FakeScale,
  type Scenario,
  type ScenarioName,
  type Target,
  type VaultPhase,
} from './report.js';
import { AnsibleProject, KeelProject, type Tool, type ToolRun } from './runners.js';
import { BENCH_LABEL, TargetPool, destroyNow, type BenchHost } from './targets.js';
import { LoadSampler, activeFakes, breakdownPhase, checkLimits, controllerCpu, cpuOf, fakeScalePhase, recordPhase, vaultPhase, type Ctx } from './phases.js';
import type { ProbeRecording } from './replay.js';
import { destroyStacksNow, feltPhase } from './felt.js';
import { ownCpuScaling, recordBoth, type OwnCpuInput } from './own-cpu.js';
import { pairFigures, runPairs, type PairFigures } from './pairs.js';
import { countResources, digestScript, driftScript, driftedPaths, makeWorkload, resetScript, type Workload } from './workload.js';

const t0 = Date.now();
const LOAD_AT_START = loadavg();
const log = (s: string) => {
  if (s) process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);
};

const SCENARIOS: ScenarioName[] = ['first', 'noop', 'change5'];
const TOO_SLOW = 'skipped: too slow for the session budget, measured at';

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  const keelRoot = keelPackageRoot();
  const outFile = resolve(opts.out ?? join(keelRoot, 'bench', 'results', 'latest.json'));
  const work = await mkdtemp(join(tmpdir(), 'keel-bench-'));
  const pool = new TargetPool(work, log);
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: removing the bench containers`);
    for (const f of activeFakes) f.killNow();
    destroyNow();
    destroyStacksNow();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await bench(opts, keelRoot, work, pool);
    await mkdir(dirname(outFile), { recursive: true });
    await writeFile(outFile, JSON.stringify(result, null, 2) + '\n');
    const md = outFile.replace(/\.json$/, '') + '.md';
    await writeFile(md, markdown(result));
    process.stdout.write(`\n${table(result)}\n\n${targetLines(result).join('\n')}\n`);
    if (result.errors.length) process.stdout.write(`\nERRORS:\n${result.errors.map((e) => `  ${e}`).join('\n')}\n`);
    process.stdout.write(`\nwrote ${outFile} and ${md}\n`);
    return result.errors.length ? 2 : 0;
  } finally {
    log('removing the bench containers');
    await pool.destroy().catch((e: Error) => log(`cleanup failed: ${e.message}`));
    await rm(work, { recursive: true, force: true });
  }
}

async function bench(opts: BenchOptions, keelRoot: string, work: string, pool: TargetPool): Promise<BenchResult> {
  const notes: string[] = [];
  const errors: string[] = [];
  const unavailable = new Map<Tool, string>();
  const wantsAnsible = opts.tools.some((t) => t !== 'keel');
  if (wantsAnsible) ensureAnsible(unavailable, opts.tools);

  // Before any keel runs: every child inherits the environment as this leaves it.
  const nodeStart = settleNodeStart(opts.keepNodeExtraCaCerts);
  const startNote = nodeStartNote(nodeStart);
  if (startNote) notes.push(startNote);

  const load = new LoadSampler(BENCH_LABEL);
  // Systemd targets hold several inotify instances each; others' tests on this machine use them too.
  const limits = checkLimits(process.getuid?.() === 0 ? 1024 : null);
  await pool.init();
  const workload = makeWorkload(opts.resources);
  if (countResources(workload) !== opts.resources) throw new Error(`bug: workload has ${countResources(workload)} resources, wanted ${opts.resources}`);
  const keel = await KeelProject.create(join(work, 'keel'), workload, keelRoot);
  const ansible = wantsAnsible ? await AnsibleProject.create(join(work, 'ansible'), workload, pool.knownHostsFile) : null;
  const ctx: Ctx = { opts, pool, workload, keel, ansible, unavailable, notes, errors, log };

  const scenarios: Scenario[] = [];
  const equivalence: BenchResult['equivalence'] = [];
  // A phase that fails is an error in the results, not the end of the run.
  const phase = async <T>(what: string, f: () => Promise<T>): Promise<T | null> => {
    try {
      return await f();
    } catch (err) {
      errors.push(`${what} failed: ${(err as Error).message}`);
      log(`${what} failed: ${(err as Error).message}`);
      return null;
    }
  };
  const full = opts.hosts.filter((n) => n <= opts.lightAbove);
  const light = opts.hosts.filter((n) => n > opts.lightAbove);
  for (const n of full) scenarios.push(...((await phase(`${n} host(s)`, () => hostCount(ctx, n, n === opts.hosts[0] ? equivalence : null))) ?? []));
  const scaled = opts.scaling && full.length ? await phase('scaling', () => scalingPhase(ctx, work, keelRoot, full)) : null;
  const overhead = opts.overhead && full.length ? await phase('overhead', () => overheadPhase(ctx)) : null;
  const felt = opts.felt
    ? await phase('speed a user feels', () =>
        feltPhase(ctx, work, keelRoot, {
          runs: opts.feltRuns,
          deployRuns: opts.deployRuns,
          baseline: opts.baseline ? resolve(opts.baseline) : null,
          resources: opts.feltResources,
          deploy: opts.deploy,
        }),
      )
    : null;
  // The vault's cost and the recording use one systemd target converged with the role.
  let vault: VaultPhase | null = null;
  if (opts.vault) {
    vault = await phase('vault', async () => {
      const [h] = await pool.grow(1);
      await ctx.keel.writeInventory('vault-host', [h!], pool.keyFile, pool.knownHostsFile);
      const conv = await ctx.keel.provision('vault-host');
      if (conv.error) throw new Error(`converging ${h!.name} first: ${conv.error}`);
      return vaultPhase(ctx, h!);
    });
  }
  let recording: ProbeRecording | null = null;
  if (opts.scale.length) {
    if (pool.light) throw new Error('bug: recording needs a systemd target');
    recording = await phase('record', async () => recordPhase(ctx, (await pool.grow(1))[0]!));
  }
  if (light.length) {
    // Light endpoints: sshd only, so the role has no services (their share goes to directories).
    const lw = makeWorkload(opts.resources, undefined, { services: false });
    const lctx: Ctx = {
      ...ctx,
      workload: lw,
      keel: await KeelProject.create(join(work, 'keel-light'), lw, keelRoot),
      ansible: wantsAnsible ? await AnsibleProject.create(join(work, 'ansible-light'), lw, pool.knownHostsFile) : null,
    };
    await pool.useLightEndpoints();
    for (const n of light) {
      const rows = (await phase(`${n} light host(s)`, () => hostCount(lctx, n, null))) ?? [];
      scenarios.push(...rows.map((r) => ({ ...r, endpoints: 'light' as const })));
    }
    notes.push(
      `${light.join(', ')} hosts: light endpoints, one container per host running only sshd (no systemd), as in earlier results: ` +
        'at fs.inotify.max_user_instances = 128 (shared by all containers on the machine) about 20 systemd containers fit, ' +
        'and 100 systemd containers would also take the 2 cores the controller runs on. ' +
        `Their role has the same ${opts.resources} resources without the ${ctx.workload.services.length} service resources ` +
        `(${lw.dirs.length} directories instead of ${ctx.workload.dirs.length}).`,
    );
  }

  let fake: FakeScale | null = null;
  if ((recording && opts.scale.length) || scaled?.own) {
    // No containers left running while the controller alone is measured.
    await pool.destroy();
    if (scaled?.own && scaled.scaling) {
      const own = scaled.own;
      scaled.scaling.own_cpu = await phase('scaling on fake endpoints', () =>
        ownCpuScaling(own, { work, pairs: opts.scalingRepeats, workers: 2, log, onError: (m) => errors.push(`scaling on fake endpoints: ${m}`) }),
      );
    }
    if (recording && opts.scale.length) fake = await phase('fake endpoints', () => fakeScalePhase(ctx, work, keelRoot, recording!, limits));
  }

  for (const [tool, reason] of unavailable) notes.push(`${tool}: null everywhere: ${reason}`);
  if (wantsAnsible && opts.ansibleRepeats < opts.repeats) {
    notes.push(
      `Ansible and Ansible+Mitogen ran in the first ${opts.ansibleRepeats} of ${opts.repeats} repeats only (--ansible-repeats, ` +
        `to fit the session's time budget): their figures are medians of ${opts.ansibleRepeats} run(s); keel's of ${opts.repeats}.`,
    );
  }
  const result: BenchResult = {
    schema: 'keel-bench/1',
    date: new Date().toISOString(),
    pid: process.pid,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    versions: versions(keelRoot),
    machine: machine(),
    node_start: nodeStart,
    options: {
      ...opts,
      ansibleMaxHosts: Number.isFinite(opts.ansibleMaxHosts) ? opts.ansibleMaxHosts : null,
      mitogenMaxHosts: Number.isFinite(opts.mitogenMaxHosts) ? opts.mitogenMaxHosts : null,
      ansibleRepeats: Number.isFinite(opts.ansibleRepeats) ? opts.ansibleRepeats : null,
      ansibleNoopOnlyAbove: Number.isFinite(opts.ansibleNoopOnlyAbove) ? opts.ansibleNoopOnlyAbove : null,
    },
    targets_kind:
      `up to ${opts.lightAbove} hosts: one systemd Debian 12 container per host (keel-target image + python3 and cron from Debian's mirror), ` +
      'real OpenSSH sshd published on 127.0.0.1; ' +
      `above: light endpoints (same image, sshd as the only process, no systemd); all share this machine's 2 cores with the controller`,
    timing:
      'Times are wall-clock medians of child processes: `node bin/keel.js provision <env> --output json` (Node start-up included) and ' +
      '`ansible-playbook` (Python start-up included), tools alternated per repeat.',
    scenarios,
    scaling: scaled?.scaling ?? null,
    breakdown: scaled?.breakdown ?? null,
    controller_cpu: controllerCpu(scenarios, fake),
    fake_scale: fake,
    vault,
    overhead,
    felt,
    tools_not_run: [...unavailable].map(([tool, reason]) => ({ tool, reason })),
    equivalence,
    limits,
    load: load.summary(),
    targets: [],
    notes,
    errors,
  };
  result.targets = evaluate(result);
  return result;
}

/** The three scenarios at one host count, every tool, `repeats` times, tools alternated. */
async function hostCount(ctx: Ctx, n: number, equivalence: BenchResult['equivalence'] | null): Promise<Scenario[]> {
  const { opts, pool, workload } = ctx;
  const hosts = await pool.grow(n);
  const env = `h${n}`;
  await ctx.keel.writeInventory(env, hosts, pool.keyFile, pool.knownHostsFile);
  await ctx.ansible?.writeInventory(env, hosts, pool.keyFile);
  const runs = Object.fromEntries(SCENARIOS.map((s) => [s, { keel: [], ansible: [], mitogen: [] }])) as unknown as Record<
    ScenarioName,
    Record<Tool, ToolRun[]>
  >;
  const skippedHere = new Map<Tool, string>();
  for (const t of opts.tools) {
    const max = t === 'mitogen' ? opts.mitogenMaxHosts : opts.ansibleMaxHosts;
    if (t !== 'keel' && n > max) skippedHere.set(t, `${TOO_SLOW} ${largestBelow(opts.hosts, max)} hosts`);
  }
  const drift = driftedPaths(workload);
  const digests = new Map<Tool, string>();

  for (let rep = 0; rep < opts.repeats; rep++) {
    const order = rep % 2 === 0 ? opts.tools : [...opts.tools].reverse();
    for (const tool of order) {
      if (ctx.unavailable.has(tool) || skippedHere.has(tool)) continue;
      if (tool !== 'keel' && rep >= opts.ansibleRepeats) continue;
      const tag = `${tool} ${n} host(s), repeat ${rep + 1}/${opts.repeats}`;
      await pool.execAll(hosts, resetScript(workload));
      const noopOnly = tool !== 'keel' && n > opts.ansibleNoopOnlyAbove;
      if (noopOnly) {
        // Budget: only the no-op is measured for this tool; the hosts get their state from keel
        // (the same state, as the equivalence check at the first host count shows).
        log(`${tag}: converging with keel first (only the no-op is measured for ${tool} here)`);
        const conv = await ctx.keel.provision(env);
        if (conv.error) {
          ctx.errors.push(`${tag}: converging with keel before the no-op failed: ${conv.error}`);
          continue;
        }
        log(`${tag}: no-op`);
        const noop = await runTool(ctx, tool, env, n);
        if (noop.error) {
          if (runs.noop[tool].length === 0 && !ctx.unavailable.has(tool)) skippedHere.set(tool, `it failed here: ${noop.error}`);
          ctx.errors.push(`${tag}, no-op: ${noop.error}`);
        } else if (noop.changed !== 0) ctx.errors.push(`${tag}, no-op: ${noop.changed} changed (not idempotent)`);
        else runs.noop[tool].push(noop);
        continue;
      }
      log(`${tag}: first converge`);
      const first = await runTool(ctx, tool, env, n);
      if (first.error) {
        if (tool !== 'keel' && runs.first[tool].length === 0) {
          ctx.unavailable.set(tool, `it failed on its first run here: ${first.error}`);
          log(`${tool} does not run here, its figures will be null: ${first.error}`);
        } else ctx.errors.push(`${tag}, first converge: ${first.error}`);
        continue;
      }
      runs.first[tool].push(first);
      if (equivalence && rep === 0) digests.set(tool, await digest(ctx, hosts[0]!));

      log(`${tag}: no-op`);
      const noop = await runTool(ctx, tool, env, n);
      if (noop.error) ctx.errors.push(`${tag}, no-op: ${noop.error}`);
      else if (noop.changed !== 0) ctx.errors.push(`${tag}, no-op: ${noop.changed} changed (not idempotent)`);
      else runs.noop[tool].push(noop);

      await pool.execAll(hosts, driftScript(drift));
      log(`${tag}: ${drift.length} files drifted`);
      const change = await runTool(ctx, tool, env, n);
      if (change.error) ctx.errors.push(`${tag}, change5: ${change.error}`);
      else if (tool === 'keel' && change.changed !== drift.length * n)
        ctx.errors.push(`${tag}, change5: ${change.changed} changed, expected ${drift.length * n}`);
      else if (change.changed === 0) ctx.errors.push(`${tag}, change5: nothing changed`);
      else runs.change5[tool].push(change);
      if (equivalence && rep === 0 && digests.has(tool)) {
        const after = await digest(ctx, hosts[0]!);
        const d = diffLines(digests.get(tool)!, after);
        equivalence.push({ compared: `${tool}: after first converge vs after the 5% change run`, tool, equal: !d, ...(d ? { diff: d } : {}) });
        if (d) ctx.errors.push(`${tool} did not restore the drifted files: ${d}`);
      }
    }
  }

  if (equivalence) {
    const k = digests.get('keel');
    for (const tool of ['ansible', 'mitogen'] as const) {
      const other = digests.get(tool);
      if (!k || !other) continue;
      const d = diffLines(k, other);
      equivalence.push({
        compared: `${hosts[0]!.name} converged by keel vs by ${tool} (paths, modes, owners, checksums, accounts, packages, services)`,
        tool,
        equal: !d,
        ...(d ? { diff: d } : {}),
      });
      if (d) ctx.errors.push(`mismatch: a host converged by ${tool} differs from one converged by keel: ${d}`);
    }
  }

  return SCENARIOS.map((name) => summarize(ctx, name, n, runs[name], skippedHere));
}

function summarize(ctx: Ctx, name: ScenarioName, n: number, r: Record<Tool, ToolRun[]>, skippedHere: Map<Tool, string>): Scenario {
  const med = (tool: Tool) => {
    const m = median(r[tool].map((x) => x.seconds));
    if (m === null && ctx.opts.tools.includes(tool)) {
      const noopOnly =
        tool !== 'keel' && n > ctx.opts.ansibleNoopOnlyAbove && name !== 'noop'
          ? 'skipped: too slow for the session budget; ' +
            `at ${n} hosts only the no-op was measured for Ansible (--ansible-noop-only-above ${ctx.opts.ansibleNoopOnlyAbove})`
          : undefined;
      const why = ctx.unavailable.get(tool) ?? skippedHere.get(tool) ?? noopOnly ?? 'no successful run (see errors)';
      const note = `${name}, ${n} host(s): ${tool} null: ${why}`;
      if (!ctx.unavailable.has(tool)) ctx.notes.push(note);
    }
    return m;
  };
  const keel = med('keel');
  const ansible = med('ansible');
  const mitogen = med('mitogen');
  const trips = r.keel.flatMap((x) => x.roundTrips ?? []);
  const rss = r.keel.map((x) => x.peakRssMb).filter((x): x is number => typeof x === 'number');
  const cpu = r.keel.map(cpuOf).filter((x): x is number => x !== null);
  return {
    name,
    hosts: n,
    resources: ctx.workload.resources,
    keel_s: round(keel),
    ansible_s: round(ansible),
    mitogen_s: round(mitogen),
    ratio_ansible: keel && ansible ? round(ansible / keel, 1) : null,
    ratio_mitogen: keel && mitogen ? round(mitogen / keel, 1) : null,
    keel_round_trips_per_host: median(trips),
    keel_peak_rss_mb: round(median(rss), 1),
    keel_cpu_s: round(median(cpu)),
    runs: {
      keel: r.keel.map((x) => round(x.seconds)!),
      ansible: r.ansible.map((x) => round(x.seconds)!),
      mitogen: r.mitogen.map((x) => round(x.seconds)!),
    },
  };
}

async function runTool(ctx: Ctx, tool: Tool, env: string, n: number): Promise<ToolRun> {
  if (tool === 'keel') return ctx.keel.provision(env);
  return ctx.ansible!.play(env, n, tool === 'mitogen');
}

async function digest(ctx: Ctx, host: BenchHost): Promise<string> {
  return (await ctx.pool.execAll([host], digestScript(ctx.workload)))[0]!;
}

/** The first few differing lines, or null when equal. */
function diffLines(a: string, b: string): string | null {
  if (a === b) return null;
  const la = a.split('\n');
  const lb = b.split('\n');
  const onlyA = la.filter((l) => !lb.includes(l));
  const onlyB = lb.filter((l) => !la.includes(l));
  return (
    `${onlyA.length} line(s) only in the first, ${onlyB.length} only in the second; ` +
    `first: ${JSON.stringify(onlyA.slice(0, 4))}; second: ${JSON.stringify(onlyB.slice(0, 4))}`
  );
}

/** No-op time for R and 2R resources on the same hosts (2R converged; R ⊂ 2R, so both are no-ops),
 *  then (opts.breakdown) the same two no-ops taken apart, controller vs host, then what one of
 *  those hosts answers to each probe, for the same figure on fake endpoints (own-cpu.ts). */
async function scalingPhase(
  ctx: Ctx,
  work: string,
  keelRoot: string,
  counts: number[],
): Promise<{ scaling: BenchResult['scaling']; breakdown: Breakdown | null; own: OwnCpuInput | null }> {
  const { opts, pool } = ctx;
  const n = counts.includes(10) ? 10 : counts[counts.length - 1]!;
  const hosts = await pool.grow(n);
  const big = makeWorkload(opts.resources * 2, ctx.workload);
  const small = new KeelProject(ctx.keel.dir, ctx.workload, keelRoot);
  const large = await KeelProject.create(join(work, 'keel-2x'), big, keelRoot);
  const env = `h${n}`;
  await small.writeInventory(env, hosts, pool.keyFile, pool.knownHostsFile);
  await large.writeInventory(env, hosts, pool.keyFile, pool.knownHostsFile);
  await pool.execAll(hosts, resetScript(big));
  log(`scaling: converging ${big.resources} resources on ${n} host(s)`);
  const conv = await large.provision(env);
  if (conv.error) {
    ctx.errors.push(`scaling: converging ${big.resources} resources failed: ${conv.error}`);
    return { scaling: null, breakdown: null, own: null };
  }
  const series = await runPairs({
    projects: [small, large],
    env,
    pairs: opts.scalingRepeats,
    phasesFile: join(work, 'scaling-phases.json'),
    log,
    check: async (_i, r) => r.error ?? (r.changed !== 0 ? `${r.changed} changed` : null),
    onError: (m) => ctx.errors.push(`scaling: ${m}`),
  });
  const trips = series.runs.map((rs) => median(rs.flatMap((r) => r.roundTrips ?? []))) as [number | null, number | null];
  const scaling: NonNullable<BenchResult['scaling']> = {
    hosts: n,
    resources: [opts.resources, big.resources],
    round_trips_per_host: trips,
    ...pairFigures(series),
  };
  let breakdown: Breakdown | null = null;
  if (opts.breakdown) {
    try {
      breakdown = await breakdownPhase(ctx, small, large, env, n, { s: scaling.noop_s, cpu: scaling.cpu_s });
    } catch (err) {
      ctx.errors.push(`breakdown failed: ${(err as Error).message}`);
    }
  }
  let own: OwnCpuInput | null = null;
  try {
    const times = opts.quick ? 3 : 21;
    own = { hosts: n, projects: [small, large], recordings: await recordBoth([small, large], hosts[0]!, pool, times, log), recorded: times };
  } catch (err) {
    ctx.errors.push(`scaling on fake endpoints: recording failed: ${(err as Error).message}`);
  }
  return { scaling, breakdown, own };
}

// The remote commands' own time, measured on the host. keel runs every script of a run in one
// long-lived `sh -s` per host (src/ssh/remote-shell.ts), each framed as a subshell followed by
// its end markers, so timing the shell would time the whole run, idle waits included. Instead,
// root's login shell becomes a wrapper that, for `-c 'sh -s'`, feeds the shell through
// `sed -u`, which adds one line inside each frame's subshell (after its `trap - PIPE`) and one
// after its end-marker line: `date +%s%N` appended to a start file and to an end file. The
// script's time is end − start (the subshell's start to after its markers are printed; plus
// one `date` spawn). keel's overhead is the CLI time minus the sum of those: Node start-up,
// loading and compiling, SSH connection set-up, the shell's start, transfer, deciding.
const TIMED_SHELL = '/usr/local/sbin/keel-bench-timed-sh';
const STARTS_FILE = '/var/tmp/keel-bench-script-start';
const ENDS_FILE = '/var/tmp/keel-bench-script-end';
const TIMED_SHELL_SCRIPT = `#!/bin/sh
# keel bench: time each framed script keel sends to its one sh -s (see bench/main.ts).
if [ "$1" = -c ] && [ "$2" = "sh -s" ]; then
  sed -u -e '/^($/{n;/^trap - PIPE$/s|$|\\ndate +%s%N >>${STARTS_FILE}|;}' \\
    -e "/^printf '.*' '@@keel-[0-9a-f]*' >&2\\$/s|\\$|\\ndate +%s%N >>${ENDS_FILE}|" | /bin/sh -s
  exit $?
fi
exec /bin/sh "$@"
`;
const INSTALL_TIMED_SHELL = `set -e
cat >${TIMED_SHELL} <<'KEEL_BENCH_EOF'
${TIMED_SHELL_SCRIPT}KEEL_BENCH_EOF
chmod 755 ${TIMED_SHELL}
usermod -s ${TIMED_SHELL} root`;

async function overheadPhase(ctx: Ctx): Promise<BenchResult['overhead']> {
  const { opts, pool, workload } = ctx;
  const [host] = await pool.grow(1);
  const env = 'overhead';
  await ctx.keel.writeInventory(env, [host!], pool.keyFile, pool.knownHostsFile);
  const shell = (await dockerExecSh(host!.container, 'getent passwd root | cut -d: -f7')).stdout.trim() || '/bin/bash';
  const runs: NonNullable<BenchResult['overhead']>['runs'] = [];
  await pool.execAll([host!], INSTALL_TIMED_SHELL);
  try {
    for (let rep = 0; rep < opts.repeats; rep++) {
      await pool.execAll([host!], `${resetScript(workload)}\nrm -f ${STARTS_FILE} ${ENDS_FILE}`.replace('exit 0', ''));
      log(`overhead: first converge on ${host!.name}, repeat ${rep + 1}/${opts.repeats}`);
      const r = await ctx.keel.provision(env);
      if (r.error) {
        ctx.errors.push(`overhead run: ${r.error}`);
        continue;
      }
      // The release script runs as keel closes the session: wait for its end line.
      const expected = (r.roundTrips?.[0] ?? 0) + 1; // + the lock release
      let starts: bigint[] = [];
      let ends: bigint[] = [];
      for (let i = 0; i < 50; i++) {
        const out = (await pool.execAll([host!], `cat ${STARTS_FILE} 2>/dev/null; echo --; cat ${ENDS_FILE} 2>/dev/null; true`))[0]!;
        const [a, b] = out.split('--\n');
        starts = (a ?? '')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((x) => BigInt(x));
        ends = (b ?? '')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((x) => BigInt(x));
        if (ends.length >= expected) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      if (starts.length !== ends.length || starts.length !== expected) {
        ctx.errors.push(
          `overhead run: ${starts.length} script starts and ${ends.length} ends timed on the host, expected ${expected} (the wrapper missed a frame)`,
        );
        continue;
      }
      const remote = starts.reduce((a, s, i) => a + Number(ends[i]! - s) / 1e9, 0);
      runs.push({ cli_s: round(r.seconds)!, report_s: round((r.reportMs ?? 0) / 1000)!, remote_s: round(remote)!, execs: starts.length });
    }
  } finally {
    await pool.execAll([host!], `usermod -s ${shell} root`);
  }
  const cli = median(runs.map((r) => r.cli_s));
  const rep = median(runs.map((r) => r.report_s));
  const remote = median(runs.map((r) => r.remote_s));
  return {
    hosts: 1,
    resources: workload.resources,
    method:
      `Remote time = the sum over the run's scripts (${runs[0]?.execs ?? '?'}: lock + probe, apply, lock release) ` +
      "of each script's wall time on the host, from its subshell's start to after its end markers, " +
      "as timed there: root's login shell is a wrapper that passes the input of keel's one `sh -s` through `sed -u`, " +
      'adding a `date +%s%N` inside each frame and one after it (one spawn each). ' +
      'CLI = the whole `keel provision` child process (Node start-up, inventory, roles, compile, connect, scripts). ' +
      "Run = the JSON report's durationMs (connect + scripts, after compile). " +
      "Overhead = CLI (or run) minus remote: all that is keel's own, SSH connection set-up and the remote shell's start included.",
    cli_s: round(cli),
    report_s: round(rep),
    remote_s: round(remote),
    overhead_cli_pct: cli && remote !== null ? round(((cli - remote) / cli) * 100, 1) : null,
    overhead_run_pct: rep && remote !== null ? round(((rep - remote) / rep) * 100, 1) : null,
    runs,
  };
}

function evaluate(r: BenchResult): Target[] {
  const find = (name: ScenarioName, hosts: number) => r.scenarios.find((s) => s.name === name && s.hosts === hosts);
  const noop10 = find('noop', 10);
  const noop100 = find('noop', 100);
  const t: Target[] = [];
  const ratioTarget = (tool: 'ansible' | 'mitogen', goal: number) => {
    const v = tool === 'ansible' ? noop10?.ratio_ansible : noop10?.ratio_mitogen;
    const label = tool === 'ansible' ? 'Ansible (pipelined)' : 'Ansible+Mitogen';
    if (v === null || v === undefined)
      return t.push({
        name: `no-op, 10 hosts: keel vs ${label}`,
        goal: `≥${goal}×`,
        measured: 'not measured',
        pass: null,
        note: 'needs 10 hosts and both tools in the run',
      });
    const pass = v >= goal;
    t.push({
      name: `no-op, 10 hosts: keel vs ${label}`,
      goal: `≥${goal}×`,
      measured: `${v}× (keel ${noop10!.keel_s} s, ${tool} ${tool === 'ansible' ? noop10!.ansible_s : noop10!.mitogen_s} s)`,
      pass,
      ...(pass ? {} : { note: `${round((1 - v / goal) * 100, 0)} % short` }),
    });
  };
  ratioTarget('ansible', 30);
  ratioTarget('mitogen', 10);
  const sc = r.scaling;
  if (sc) {
    const [a, b] = sc.round_trips_per_host;
    t.push({
      name: `no-op round trips per host independent of resources`,
      goal: `same at ${sc.resources[0]} and ${sc.resources[1]}`,
      measured: `${a} → ${b}`,
      pass: a !== null && a === b,
    });
    const growth = (where: string, x: PairFigures) =>
      t.push({
        name: `no-op time ${sc.resources[0]} → ${sc.resources[1]} resources (${where})`,
        goal: '<10 % more',
        measured: `${pairedGrowth(x)} (medians ${x.noop_s[0]} s → ${x.noop_s[1]} s: ${x.growth_pct} %)`,
        pass: x.paired_growth_pct != null && x.paired_growth_pct < 10,
      });
    growth(`${sc.hosts} systemd targets sharing the controller's 2 cores`, sc);
    if (sc.own_cpu) growth(`${sc.own_cpu.hosts} fake endpoints that each have their own CPU`, sc.own_cpu);
  }
  if (noop100?.keel_s != null) {
    t.push({
      name: 'no-op, 100 hosts, keel',
      goal: '<5 s',
      measured: `${noop100.keel_s} s`,
      pass: noop100.keel_s < 5,
      ...(noop100.keel_s < 5 ? {} : { note: `${round(noop100.keel_s - 5, 2)} s over` }),
    });
    const peak = r.scenarios.filter((s) => s.hosts === 100 && s.name === 'noop').map((s) => s.keel_peak_rss_mb ?? 0)[0] ?? null;
    t.push({ name: 'controller peak memory, no-op, 100 hosts', goal: '<300 MB', measured: `${peak} MB`, pass: peak !== null && peak < 300 });
  } else {
    t.push({ name: 'no-op, 100 hosts, keel', goal: '<5 s', measured: 'not measured', pass: null });
  }
  const o = r.overhead;
  if (o?.overhead_cli_pct != null) {
    const pass = o.overhead_cli_pct < 5;
    t.push({
      name: `keel's own overhead, first converge (${o.resources} resources, 1 host)`,
      goal: '<5 %',
      measured:
        `${o.overhead_cli_pct} % of the CLI time (${round(o.cli_s! - o.remote_s!, 3)} s of ${o.cli_s} s); ` +
        `${o.overhead_run_pct} % of the run time excluding Node start-up and compile (${round(o.report_s! - o.remote_s!, 3)} s of ${o.report_s} s)`,
      pass,
    });
  }
  t.push(...newTargets(r));
  return t;
}

function ensureAnsible(unavailable: Map<Tool, string>, tools: Tool[]): void {
  const installed = (pkg: string) => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev}', pkg], { encoding: 'utf8' }).startsWith('ii');
    } catch {
      return false;
    }
  };
  const missing = ['ansible-core', 'ansible-mitogen'].filter((p) => !installed(p));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    for (const t of tools)
      if (t !== 'keel') unavailable.set(t, `${missing.join(', ')} not installed and the bench is not root (apt-get install -y ansible-core ansible-mitogen)`);
    return;
  }
  log(`installing ${missing.join(' ')} from Debian`);
  try {
    execFileSync('apt-get', ['install', '-y', '-q', ...missing], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch {
    execFileSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync('apt-get', ['install', '-y', '-q', ...missing], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
}

function versions(keelRoot: string): Record<string, string | null> {
  const cmd = (file: string, args: string[]) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .trim()
        .split('\n')[0]!;
    } catch {
      return null;
    }
  };
  const osRelease = existsSync('/etc/os-release') ? (/^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null) : null;
  return {
    keel: (JSON.parse(readFileSync(join(keelRoot, 'package.json'), 'utf8')) as { version: string }).version,
    node: process.version,
    ansible_core: cmd('ansible', ['--version']),
    mitogen: cmd('dpkg-query', ['-W', '-f', '${Version}', 'ansible-mitogen']),
    openssh_client: cmd('sh', ['-c', 'ssh -V 2>&1']),
    docker: cmd('docker', ['version', '--format', '{{.Server.Version}}']),
    os: osRelease,
    kernel: release(),
  };
}

function machine(): Record<string, string | number> {
  return {
    load_average_at_start: LOAD_AT_START.map((x) => x.toFixed(2)).join(' '),
    load_average_at_end: loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    cpu_model: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
  };
}

function largestBelow(xs: number[], max: number): number {
  return Math.max(...xs.filter((x) => x <= max));
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    destroyNow();
    destroyStacksNow();
    process.exit(1);
  },
);
