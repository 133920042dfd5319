// The result document (bench/results/latest.json), the table (terminal and latest.md) and the
// PASS/MISS verdict per target.
import type { NodeStart } from './node-start.js';
import type { Felt } from './felt.js';
import type { NoopProfile } from './profile.js';
import type { Distribution, VaultBenchResult } from './vault.js';
import type { OwnCpuScaling } from './own-cpu.js';
import type { PairFigures } from './pairs.js';
import { describeQuiet, type QuietSummary } from './quiet.js';

export type ScenarioName = 'first' | 'noop' | 'change5';

export interface Scenario {
  name: ScenarioName;
  hosts: number;
  resources: number;
  keel_s: number | null;
  ansible_s: number | null;
  mitogen_s: number | null;
  ratio_ansible: number | null;
  ratio_mitogen: number | null;
  keel_round_trips_per_host: number | null;
  keel_peak_rss_mb: number | null;
  /** Median user+sys CPU seconds of the keel process (GNU time %U + %S). */
  keel_cpu_s?: number | null;
  /** 'light' when the hosts were sshd-only containers (see notes). */
  endpoints?: 'light';
  /** Every measured run, seconds, in run order (the medians above come from these). */
  runs: { keel: number[]; ansible: number[]; mitogen: number[] };
}

export interface Target {
  name: string;
  goal: string;
  measured: string;
  pass: boolean | null;
  note?: string;
}

export interface BenchResult {
  schema: 'keel-bench/1';
  date: string;
  /** The bench process: its containers were labelled keel.bench=<pid>. */
  pid: number;
  command: string;
  versions: Record<string, string | null>;
  machine: Record<string, string | number>;
  /** NODE_EXTRA_CA_CERTS: what it costs a Node start here, and whether keel ran with it. */
  node_start?: NodeStart;
  options: Record<string, unknown>;
  targets_kind: string;
  timing: string;
  scenarios: Scenario[];
  /** No-op time for R and 2R resources in pairs (pairs.ts), on the systemd targets. */
  scaling:
    | (PairFigures & {
        hosts: number;
        resources: [number, number];
        round_trips_per_host: [number | null, number | null];
        /** The same pairs against fake endpoints that each answer after a real host's own probe
         *  time (own-cpu.ts): the hosts' work off the controller's cores. */
        own_cpu?: OwnCpuScaling | null;
      })
    | null;
  /** The scaling no-op taken apart (bench/profile.ts): medians per size, and the differences. */
  breakdown: Breakdown | null;
  /** The controller's own CPU per host, apart from the targets' (which share its cores). */
  controller_cpu: ControllerCpu | null;
  /** The no-op against fake SSH endpoints (bench/fake-endpoint.ts). */
  fake_scale: FakeScale | null;
  /** What a vault costs (bench/vault.ts). */
  vault: VaultPhase | null;
  /** Limits checked or raised for the run. */
  limits: Limits | null;
  /** Load on the machine while the bench ran (others' tests share its 2 cores). */
  load: LoadSummary | null;
  overhead: {
    hosts: number;
    resources: number;
    method: string;
    cli_s: number | null;
    report_s: number | null;
    remote_s: number | null;
    overhead_cli_pct: number | null;
    overhead_run_pct: number | null;
    runs: { cli_s: number; report_s: number; remote_s: number; execs: number }[];
  } | null;
  /** Tools that could not run here, with why (their figures are null): a failure is a result. */
  tools_not_run?: { tool: string; reason: string }[];
  /** Speed a user feels (bench/felt.ts): small no-op, the demo's plan, code-only deploys. */
  felt?: Felt | null;
  equivalence: { compared: string; tool: string; equal: boolean; diff?: string }[];
  targets: Target[];
  notes: string[];
  errors: string[];
}

export interface Breakdown {
  hosts: number;
  resources: [number, number];
  repeats: number;
  method: string;
  /** Field-by-field medians of the profile runs at each size. */
  profiles: [NoopProfile | null, NoopProfile | null];
  /** The CLI no-op (from the scaling runs) at each size: wall and controller CPU. */
  cli_s: [number | null, number | null];
  cli_cpu_s: [number | null, number | null];
  /** Where the growth went, seconds (large − small), per side. */
  delta: {
    cli_s: number | null;
    cli_cpu_s: number | null;
    controller_s: number | null;
    host_probe_s: number | null;
    wire_s: number | null;
    rest_s: number | null;
  };
}

export interface ControllerCpu {
  method: string;
  rows: {
    source: 'containers' | 'light containers' | 'fake endpoints';
    hosts: number;
    resources: number;
    wall_s: number | null;
    cpu_s: number | null;
    cpu_ms_per_host: number | null;
    peak_rss_mb: number | null;
  }[];
  /** (CPU at 100 hosts − CPU at 10 hosts) / 90: what one more host costs. */
  marginal_ms_per_host_containers: number | null;
  /** The same slope between the smallest and largest fake endpoint counts. */
  marginal_ms_per_host_fake: number | null;
}

export interface FakeScaleRow {
  hosts: number;
  /** 1-minute load average when this host count started. */
  load1_at_start?: number | null;
  wall_s: number | null;
  cpu_s: number | null;
  cpu_user_s: number | null;
  cpu_sys_s: number | null;
  cpu_ms_per_host: number | null;
  peak_rss_mb: number | null;
  peak_fds: number | null;
  round_trips_per_host: number | null;
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  /** Scripts the endpoints answered in this run. */
  endpoint: { connections: number; execs: number; probes: number; releases: number; unknown: number; auth_failures: number; peak_channels: number };
  runs: number[];
  errors: string[];
}

export interface FakeScale {
  method: string;
  not_costed: string;
  recording: { source: string; resources: number; host_ms: number; stdout_bytes: number };
  delay_ms: number;
  workers: number;
  workers_rss_mb: number[];
  rows: FakeScaleRow[];
}

export interface VaultPhase {
  method: string;
  inventory: VaultBenchResult | null;
  provision: VaultBenchResult | null;
}

export interface Limits {
  nofile_soft: number | null;
  nofile_hard: number | null;
  /** Set when keel ran under a raised `ulimit -n`. */
  nofile_raised_to: number | null;
  inotify_max_user_instances_before: number | null;
  inotify_max_user_instances_after: number | null;
  notes: string[];
}

export interface LoadSummary {
  /** 1-minute load average sampled every 15 s: min / median / max. */
  load1: { min: number; median: number; max: number; samples: number } | null;
  other_containers_at_start: number | null;
  other_containers_at_end: number | null;
}

/** The targets of "Speed a user feels": the vault, the controller's CPU per host, 1,000 hosts. */
export function newTargets(r: BenchResult): Target[] {
  const t: Target[] = [...feltTargets(r)];
  const pv = r.vault?.provision;
  if (pv) {
    const none = pv.modes.find((m) => m.mode === 'none');
    for (const mode of ['unlocked', 'identity'] as const) {
      const m = pv.modes.find((x) => x.mode === mode);
      const name =
        `no-op provision (1 host, ${r.scenarios[0]?.resources ?? '?'} resources) with ` +
        `${mode === 'unlocked' ? 'an unlocked vault' : 'an X25519 identity'} vs no vault`;
      if (!none?.runs || !m?.runs) {
        t.push({ name, goal: 'within 0.1 s (median)', measured: 'not measured', pass: null, note: 'a set-up failed: see errors' });
        continue;
      }
      const d = round((m.wallMs.median - none.wallMs.median) / 1000, 3)!;
      const cpu = round((m.userCpuMs.median + m.systemCpuMs.median - none.userCpuMs.median - none.systemCpuMs.median) / 1000, 3);
      const pass = d <= 0.1;
      t.push({
        name,
        goal: 'within 0.1 s (median)',
        measured:
          `${signed(d)} s median wall (${round(m.wallMs.median / 1000, 3)} s vs ${round(none.wallMs.median / 1000, 3)} s; ` +
          `p90 ${round(m.wallMs.p90 / 1000, 3)} vs ${round(none.wallMs.p90 / 1000, 3)} s), CPU ${signed(cpu)} s, ${pv.runsPerMode} runs each`,
        pass,
        ...(pass ? {} : { note: `${round(d - 0.1, 3)} s over` }),
      });
    }
  }
  const cc = r.controller_cpu;
  if (cc) {
    const fakeRows = cc.rows.filter((x) => x.source === 'fake endpoints');
    const biggest = fakeRows[fakeRows.length - 1];
    const parts = [
      cc.marginal_ms_per_host_containers !== null ? `${cc.marginal_ms_per_host_containers} ms per added host between 10 and 100 container hosts` : null,
      cc.marginal_ms_per_host_fake !== null
        ? `${cc.marginal_ms_per_host_fake} ms per added host between ${fakeRows[0]?.hosts} and ${biggest?.hosts} fake endpoints`
        : null,
      biggest?.cpu_ms_per_host != null ? `${biggest.cpu_ms_per_host} ms per host in all at ${biggest.hosts} (${biggest.cpu_s} s)` : null,
    ].filter((x): x is string => x !== null);
    const figures = [cc.marginal_ms_per_host_containers, cc.marginal_ms_per_host_fake, biggest?.cpu_ms_per_host ?? null].filter((x): x is number => x !== null);
    const worst = figures.length ? Math.max(...figures) : null;
    t.push({
      name: `controller CPU (user+sys) per host, no-op, ${cc.rows[0]?.resources ?? '?'} resources`,
      goal: '≤25 ms',
      measured: parts.join('; ') || 'not measured',
      pass: worst === null ? null : worst <= 25,
      ...(worst !== null && worst > 25 ? { note: `${round(worst - 25, 2)} ms over at worst` } : {}),
    });
  }
  const fs = r.fake_scale;
  const k = fs?.rows.find((x) => x.hosts === 1000) ?? null;
  if (fs && k) {
    t.push({
      name: 'no-op, 1,000 hosts (fake SSH endpoints), keel',
      goal: '≤30 s',
      measured: `${k.wall_s} s (controller CPU ${k.cpu_s} s)`,
      pass: k.wall_s !== null && k.wall_s <= 30,
      ...(k.wall_s !== null && k.wall_s > 30 ? { note: `${round(k.wall_s - 30, 2)} s over` } : {}),
    });
    t.push({
      name: 'controller peak memory, no-op, 1,000 hosts',
      goal: '≤600 MB',
      measured: `${k.peak_rss_mb} MB`,
      pass: k.peak_rss_mb !== null ? k.peak_rss_mb <= 600 : null,
    });
    const soft = r.limits?.nofile_raised_to ?? r.limits?.nofile_soft ?? null;
    const clean = k.errors.length === 0 && k.unreachable === 0 && k.failed === 0 && k.endpoint.probes === 1000 && k.endpoint.releases === 1000;
    t.push({
      name: 'no file-descriptor, channel or memory limit hit at 1,000 hosts',
      goal: 'every host probed and released, no error',
      measured:
        `${k.endpoint.probes} probes and ${k.endpoint.releases} releases answered, ${k.unreachable} unreachable, ${k.failed} failed; ` +
        `peak ${k.peak_fds ?? '?'} open files of ${soft ?? '?'} allowed; ${k.endpoint.peak_channels} exec channels open at once at most` +
        `${k.errors.length ? `; errors: ${k.errors.slice(0, 2).join('; ')}` : ''}`,
      pass: clean,
    });
  } else if (r.options.scale && (r.options.scale as number[]).includes(1000)) {
    t.push({
      name: 'no-op, 1,000 hosts (fake SSH endpoints), keel',
      goal: '≤30 s',
      measured: 'not measured',
      pass: null,
      note: 'the phase failed: see errors',
    });
  }
  return t;
}

/** Issue 22's one-host no-op and demo plan, issue 17's code-only deploy. */
function feltTargets(r: BenchResult): Target[] {
  const f = r.felt;
  if (!f) return [];
  const t: Target[] = [];
  const one = (name: string, goal: number, s: { keel: { median_s: number | null }; load1: [number, number] } | null, why: string) => {
    const v = s?.keel.median_s ?? null;
    if (v === null) return t.push({ name, goal: `≤${goal} s`, measured: 'not measured', pass: null, note: why });
    const pass = v <= goal;
    t.push({
      name,
      goal: `≤${goal} s`,
      measured: `${v} s median (load ${s!.load1[0]} → ${s!.load1[1]})`,
      pass,
      ...(pass ? {} : { note: `${round(v - goal, 3)} s over` }),
    });
  };
  const sn = f.small_noop;
  one(`no-op, 1 host, ${sn?.resources ?? '?'} resources (wall, Node start-up included)`, 0.3, sn, 'see errors');
  one("keel plan on the demo's 3 hosts", 0.5, f.demo_plan, 'the demo stack was not set up (--no-deploy or an error)');
  one('code-only deploy of the sample app, web1 + worker1', 3, f.deploy, 'the demo stack was not set up (--no-deploy or an error)');
  return t;
}

const signed = (x: number | null) => (x === null ? '—' : x >= 0 ? `+${x}` : `${x}`);

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The q-quantile (0..1) of xs, interpolated between the two nearest ranks; null when empty. */
export function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo);
}

/**
 * A distribution-free confidence interval of the median: the k-th smallest and k-th largest of
 * `xs`, with k the largest rank for which P(Binomial(n, ½) < k) ≤ (1 − level) / 2. It assumes
 * only that the values are independent draws of one distribution, which the scaling pairs are
 * meant to be. Null when n is too small for that level (fewer than 6 values at 95 %).
 */
export function medianInterval(xs: number[], level = 0.95): [number, number] | null {
  const n = xs.length;
  const tail = (1 - level) / 2;
  // P(X ≤ j) for X ~ Binomial(n, ½), summed from j = 0 until it passes the tail.
  let below = 0;
  let term = 0.5 ** n;
  let k = 0;
  for (let j = 0; j < n; j++) {
    below += term;
    if (below > tail) break;
    k = j + 1;
    term = (term * (n - j)) / (j + 1);
  }
  if (k === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return [s[k - 1]!, s[n - k]!];
}

export function round(x: number | null, digits = 3): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** ", quartiles a to b %" of the scaling pairs' growths, when the results have them. */
const quartiles = (q: [number, number] | null | undefined) => (q ? `, quartiles ${fmt(q[0], 1)} to ${fmt(q[1], 1)} %` : '');

/** ", its 95 % interval a to b %" of the scaling pairs' median growth, when the results have it. */
const interval = (q: [number, number] | null | undefined) => (q ? `, 95 % interval of that median ${fmt(q[0], 1)} to ${fmt(q[1], 1)} %` : '');

/** "median of the N pairs' ratios m %, 95 % interval …, quartiles …" of a scaling figure. */
export const pairedGrowth = (x: PairFigures) =>
  `median of the ${x.pairs} pairs' ratios ${fmt(x.paired_growth_pct, 1)} %` +
  `${interval(x.paired_growth_ci95_pct)}${quartiles(x.paired_growth_quartiles_pct)}`;

const fmt = (x: number | null, d = 2) => (x === null ? '—' : x.toFixed(d));
const ratio = (x: number | null) => (x === null ? '—' : `${x.toFixed(1)}×`);

export function table(result: BenchResult): string {
  const failed = new Set((result.tools_not_run ?? []).map((t) => t.tool));
  const fmtTool = (x: number | null, tool: string) => (x === null && failed.has(tool) ? 'failed†' : fmt(x));
  const rows = [
    '| scenario | hosts | resources | keel (s) | Ansible (s) | Ansible+Mitogen (s) | keel vs Ansible | keel vs Mitogen | keel round trips/host | ' +
      'keel peak RSS (MB) | keel CPU (s) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...result.scenarios.map(
      (s) =>
        `| ${s.name} | ${s.hosts}${s.endpoints ? '*' : ''} | ${s.resources} | ${fmt(s.keel_s)} | ${fmtTool(s.ansible_s, 'ansible')} | ` +
        `${fmtTool(s.mitogen_s, 'mitogen')} | ` +
        `${ratio(s.ratio_ansible)} | ${ratio(s.ratio_mitogen)} | ${fmt(s.keel_round_trips_per_host, 0)} | ${fmt(s.keel_peak_rss_mb, 0)} | ` +
        `${fmt(s.keel_cpu_s ?? null)} |`,
    ),
  ];
  return rows.join('\n');
}

export function targetLines(result: BenchResult): string[] {
  return result.targets.map(
    (t) => `${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.measured} (target ${t.goal})${t.note ? ` — ${t.note}` : ''}`,
  );
}

export function markdown(result: BenchResult): string {
  const o = result.overhead;
  const sc = result.scaling;
  return [
    `# keel benchmark results`,
    '',
    `${result.date} · ${result.machine.cpu_model} × ${result.machine.cpus} · ${result.versions.os} · node ${result.versions.node} · ` +
      `${result.versions.ansible_core ?? 'ansible-core not run'} · mitogen ${result.versions.mitogen ?? '—'}`,
    '',
    `Command: \`${result.command}\`. Targets: ${result.targets_kind}. ${result.timing}`,
    '',
    table(result),
    '',
    ...(result.scenarios.some((s) => s.endpoints) ? ['\\* light endpoints: sshd-only containers, role without service resources (see notes).', ''] : []),
    ...(result.tools_not_run?.length ? [...result.tools_not_run.map((t) => `† ${t.tool} did not run here: ${t.reason}`), ''] : []),
    ...(sc
      ? [
          `No-op scaling (keel, ${sc.hosts} hosts): ${sc.resources[0]} resources ${fmt(sc.noop_s[0])} s → ` +
            `${sc.resources[1]} resources ${fmt(sc.noop_s[1])} s (${fmt(sc.growth_pct, 1)} %; ${pairedGrowth(sc)}), ` +
            `round trips/host ${fmt(sc.round_trips_per_host[0], 0)} → ${fmt(sc.round_trips_per_host[1], 0)}.${describeQuiet(sc.quiet)}`,
          '',
          ...scalingPhases(sc.phases_ms, sc.resources, `${sc.hosts} hosts`),
          ...ownCpuSection(sc),
        ]
      : []),
    ...(o
      ? [
          `keel's own overhead, first converge, ${o.hosts} host, ${o.resources} resources: ` +
            `CLI ${fmt(o.cli_s)} s, run (connect + scripts) ${fmt(o.report_s)} s, remote commands ${fmt(o.remote_s)} s → ` +
            `overhead ${fmt(o.overhead_cli_pct, 1)} % of the CLI time, ${fmt(o.overhead_run_pct, 1)} % of the run time. ${o.method}`,
          '',
        ]
      : []),
    ...feltSection(result),
    ...breakdownSection(result),
    ...controllerSection(result),
    ...fakeSection(result),
    ...vaultSection(result),
    ...machineSection(result),
    '## Targets',
    '',
    ...targetLines(result).map((l) => `- ${l}`),
    '',
    ...(result.notes.length ? ['## Notes', '', ...result.notes.map((n) => `- ${n}`), ''] : []),
    ...(result.errors.length ? ['## Errors', '', ...result.errors.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

/** The scaling runs' own phases (the real CLI's KEEL_PHASE_TIMES): where the growth went. */
function scalingPhases(phases: PairFigures['phases_ms'], resources: [number, number], hosts: string): string[] {
  const [a, b] = phases;
  if (!a || !b) return [];
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((n) => n !== 'wall');
  const row = (n: string) => `| ${n} | ${ms(a[n] ?? null)} | ${ms(b[n] ?? null)} | ${ms((b[n] ?? 0) - (a[n] ?? 0))} |`;
  return [
    `The same no-op runs' phases (ms, medians; KEEL_PHASE_TIMES of the CLI itself; waits on hosts are the union over the ${hosts}):`,
    '',
    `| phase | ${resources[0]} | ${resources[1]} | growth |`,
    '|---|---:|---:|---:|',
    ...names.map(row),
    row('wall'),
    '',
  ];
}

/** The scaling figure on fake endpoints that answer after a real host's own probe time. */
function ownCpuSection(sc: NonNullable<BenchResult['scaling']>): string[] {
  const o = sc.own_cpu;
  if (!o) return [];
  return [
    `No-op scaling (keel, ${o.hosts} fake endpoints that each have their own CPU): ${sc.resources[0]} resources ${fmt(o.noop_s[0])} s → ` +
      `${sc.resources[1]} resources ${fmt(o.noop_s[1])} s (${fmt(o.growth_pct, 1)} %; ${pairedGrowth(o)}); ` +
      `the host's probe ${o.host_probe_ms[0]} ms → ${o.host_probe_ms[1]} ms. ${o.method}${describeQuiet(o.quiet)}`,
    '',
    ...scalingPhases(o.phases_ms, sc.resources, `${o.hosts} endpoints`),
  ];
}

function feltSection(r: BenchResult): string[] {
  const f = r.felt;
  if (!f) return [];
  const base = f.baseline;
  const s = (x: { median_s: number | null } | null | undefined) => fmt(x?.median_s ?? null);
  const row = (
    what: string,
    x: { runs: number; load1: [number, number]; keel: { median_s: number | null }; baseline: { median_s: number | null } | null; ratio: number | null } | null,
  ) => (x ? `| ${what} | ${x.runs} | ${s(x.keel)} | ${base ? s(x.baseline) : '—'} | ${base ? ratio(x.ratio) : '—'} | ${x.load1[0]} → ${x.load1[1]} |` : null);
  const phaseNames = [
    ...new Set([...Object.keys(f.small_noop?.keel.phases_ms ?? {}), ...Object.keys(f.demo_plan?.keel.phases_ms ?? {})].filter((k) => k !== 'wall')),
  ];
  const phases = phaseNames.map((p) => `| ${p} | ${ms(f.small_noop?.keel.phases_ms?.[p] ?? null)} | ${ms(f.demo_plan?.keel.phases_ms?.[p] ?? null)} |`);
  const d = f.deploy;
  const hosts = d ? d.hosts : [];
  const deployPhases = d
    ? [...new Set(hosts.flatMap((h) => [...Object.keys(d.keel.phases_by_host[h] ?? {}), ...Object.keys(d.baseline?.phases_by_host[h] ?? {})]))]
    : [];
  const cell = (x: DeploySeriesLike | null | undefined, h: string, p: string) => ms((x?.phases_by_host[h]?.[p] ?? null) as number | null, 0);
  const errors = [f.small_noop, f.demo_plan, f.deploy].flatMap((x) => [...(x?.keel.errors ?? []), ...(x?.baseline?.errors ?? [])]);
  return [
    '## Speed a user feels',
    '',
    `keel: ${f.keel.commit ?? f.keel.dir}${base ? `; baseline: ${base.commit ?? base.dir} (${base.dir})` : ''}.`,
    '',
    '| what | runs each | keel median (s) | baseline median (s) | baseline / keel | load (1 min) start → end |',
    '|---|---:|---:|---:|---:|---|',
    ...[
      row(`no-op, 1 host, ${f.small_noop?.resources ?? '?'} resources`, f.small_noop),
      row("`keel plan`, the demo's 3 hosts", f.demo_plan),
      row('code-only deploy, web1 + worker1', f.deploy),
    ].filter((x): x is string => x !== null),
    '',
    ...(phases.length
      ? [
          "Where keel's time goes (ms, medians of its runs; waits on hosts may overlap the work: see bench/README.md):",
          '',
          '| phase | no-op, 1 host | plan, 3 hosts |',
          '|---|---:|---:|',
          ...phases,
          `| wall | ${ms(f.small_noop?.keel.phases_ms?.wall ?? null)} | ${ms(f.demo_plan?.keel.phases_ms?.wall ?? null)} |`,
          '',
        ]
      : []),
    ...(d
      ? [
          `Code-only deploy, per host and phase (ms, medians of the sums of each phase's steps; the deploy's own durationMs: keel ${fmt(d.keel.report_s)} s` +
            `${base ? `, baseline ${fmt(d.baseline?.report_s ?? null)} s` : ''}):`,
          '',
          `| phase | ${hosts.map((h) => (base ? `${h} keel | ${h} baseline` : `${h} keel`)).join(' | ')} |`,
          `|---|${hosts.map(() => (base ? '---:|---:' : '---:')).join('|')}|`,
          ...deployPhases.map(
            (p) => `| ${p} | ${hosts.map((h) => (base ? `${cell(d.keel, h, p)} | ${cell(d.baseline, h, p)}` : cell(d.keel, h, p))).join(' | ')} |`,
          ),
          '',
        ]
      : []),
    ...(errors.length ? [`Failed runs (left out of the medians): ${errors.slice(0, 6).join('; ')}`, ''] : []),
    ...(
      [
        ['Small no-op', f.small_noop?.quiet],
        ['Plan', f.demo_plan?.quiet],
      ] as const
    ).flatMap(([what, q]) => (q ? [`${what}:${describeQuiet(q)}`, ''] : [])),
    f.method,
    '',
  ];
}

type DeploySeriesLike = { phases_by_host: Record<string, Record<string, number>> };

const ms = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? '—' : x.toFixed(d));

function breakdownSection(r: BenchResult): string[] {
  const b = r.breakdown;
  if (!b) return [];
  const [p, q] = b.profiles;
  const row = (label: string, f: (x: NonNullable<typeof p>) => number | null) =>
    `| ${label} | ${p ? ms(f(p)) : '—'} | ${q ? ms(f(q)) : '—'} | ${p && q && f(p) !== null && f(q) !== null ? ms(f(q)! - f(p)!) : '—'} |`;
  return [
    `## Where a no-op's time goes: ${b.resources[0]} → ${b.resources[1]} resources, ${b.hosts} hosts`,
    '',
    `CLI no-op (from the scaling runs): ${fmt(b.cli_s[0])} s → ${fmt(b.cli_s[1])} s (+${fmt(b.delta.cli_s, 3)} s); ` +
      `the keel process's CPU ${fmt(b.cli_cpu_s[0])} s → ${fmt(b.cli_cpu_s[1])} s (+${fmt(b.delta.cli_cpu_s, 3)} s).`,
    '',
    `| part (ms, median of ${b.repeats}) | ${b.resources[0]} | ${b.resources[1]} | growth |`,
    '|---|---:|---:|---:|',
    row('controller: Node start-up + engine modules', (x) => x.startup_ms),
    row('controller: inventory', (x) => x.controller.inventory_ms),
    row('controller: roles (parse role.yaml)', (x) => x.controller.roles_ms),
    row(`controller: compile (all ${b.hosts} hosts)`, (x) => x.controller.compile_ms),
    row('controller: build probe scripts', (x) => x.controller.probe_scripts_ms),
    row(`controller: parse + decide (all ${b.hosts} hosts)`, (x) => x.controller.parse_decide_ms),
    row('controller: CPU of the parts above', (x) => x.controller.cpu_ms),
    row('wire: connect (all hosts at once)', (x) => x.wire.connect_ms),
    row('host: probe on the host (median host)', (x) => x.host.probe_ms_median),
    row('host: probe on the host (slowest host)', (x) => x.host.probe_ms_max),
    row('wire: probe round trip (all hosts at once)', (x) => x.wire.probe_round_trip_ms),
    row('wire: release round trip', (x) => x.wire.release_ms),
    row('probe script bytes per host', (x) => x.wire.script_bytes_per_host),
    row('probe output bytes per host', (x) => x.wire.output_bytes_per_host),
    '',
    `Growth per side (s): controller ${fmt(b.delta.controller_s, 3)}, host probe ${fmt(b.delta.host_probe_s, 3)}, ` +
      `wire ${fmt(b.delta.wire_s, 3)}, rest ${fmt(b.delta.rest_s, 3)} (of +${fmt(b.delta.cli_s, 3)} s). ${b.method}`,
    '',
  ];
}

function controllerSection(r: BenchResult): string[] {
  const c = r.controller_cpu;
  if (!c) return [];
  return [
    "## The controller's own CPU (no-op)",
    '',
    '| hosts | endpoints | resources | wall (s) | keel CPU user+sys (s) | CPU per host (ms) | peak RSS (MB) |',
    '|---:|---|---:|---:|---:|---:|---:|',
    ...c.rows.map(
      (x) => `| ${x.hosts} | ${x.source} | ${x.resources} | ${fmt(x.wall_s)} | ${fmt(x.cpu_s)} | ${ms(x.cpu_ms_per_host)} | ${fmt(x.peak_rss_mb, 0)} |`,
    ),
    '',
    `Marginal CPU per added host: ${ms(c.marginal_ms_per_host_containers)} ms (10 → 100 container hosts), ` +
      `${ms(c.marginal_ms_per_host_fake)} ms (fake endpoints, smallest → largest count). ${c.method}`,
    '',
  ];
}

function fakeSection(r: BenchResult): string[] {
  const f = r.fake_scale;
  if (!f) return [];
  return [
    '## No-op against fake SSH endpoints (100 → 1,000 hosts)',
    '',
    '| hosts | load at start | wall (s) | keel CPU (s) | CPU per host (ms) | peak RSS (MB) | peak open files ' +
      '| round trips/host | probes / releases answered | errors |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...f.rows.map(
      (x) =>
        `| ${x.hosts} | ${fmt(x.load1_at_start ?? null)} | ${fmt(x.wall_s)} | ${fmt(x.cpu_s)} | ${ms(x.cpu_ms_per_host)} | ` +
        `${fmt(x.peak_rss_mb, 0)} | ${x.peak_fds ?? '—'} | ${fmt(x.round_trips_per_host, 0)} | ${x.endpoint.probes} / ${x.endpoint.releases} | ` +
        `${x.errors.length ? x.errors.join('; ') : 'none'} |`,
    ),
    '',
    `Recording: ${f.recording.resources} resources from ${f.recording.source}, ${f.recording.stdout_bytes} bytes of probe output, ` +
      `${f.recording.host_ms} ms on that host. Workers' RSS at the end: ${f.workers_rss_mb.join(', ')} MB. ${f.method}`,
    '',
    f.not_costed,
    '',
  ];
}

function vaultSection(r: BenchResult): string[] {
  const v = r.vault;
  if (!v) return [];
  const rows = (x: VaultBenchResult | null) =>
    x
      ? x.modes.map(
          (m) =>
            `| \`${x.command}\` | ${m.mode} | ${m.runs}${m.failures ? ` (${m.failures} failed)` : ''} | ${dist(m.wallMs)} | ` +
            `${dist(m.userCpuMs)} | ${ms(m.systemCpuMs.median)} | ${dist(m.peakRssMiB)} |`,
        )
      : [];
  return [
    "## The vault's cost per command",
    '',
    '| command | vault | runs | wall ms min / median / p90 / max | user CPU ms min / median / p90 / max ' +
      '| sys CPU ms median | peak RSS MiB min / median / p90 / max |',
    '|---|---|---:|---|---|---:|---|',
    ...rows(v.inventory),
    ...rows(v.provision),
    '',
    `${v.method} Load average during the inventory runs ${v.inventory?.loadavgAtStart.map((x) => x.toFixed(2)).join(' ') ?? '—'} → ` +
      `${v.inventory?.loadavgAtEnd.map((x) => x.toFixed(2)).join(' ') ?? '—'}; ` +
      `provision runs ${v.provision?.loadavgAtStart.map((x) => x.toFixed(2)).join(' ') ?? '—'} → ` +
      `${v.provision?.loadavgAtEnd.map((x) => x.toFixed(2)).join(' ') ?? '—'}.`,
    '',
  ];
}

function dist(d: Distribution): string {
  return `${ms(d.min, 0)} / ${ms(d.median, 0)} / ${ms(d.p90, 0)} / ${ms(d.max, 0)}`;
}

function machineSection(r: BenchResult): string[] {
  const l = r.load;
  const lim = r.limits;
  if (!l && !lim) return [];
  return [
    '## The machine while it ran',
    '',
    ...(l?.load1
      ? [
          `1-minute load average (2 cores, shared with other people's tests): min ${l.load1.min}, median ${l.load1.median}, ` +
            `max ${l.load1.max} over ${l.load1.samples} samples (every 15 s); at start ${r.machine.load_average_at_start}, ` +
            `at end ${r.machine.load_average_at_end}. Other containers running: ${l.other_containers_at_start ?? '?'} at start, ` +
            `${l.other_containers_at_end ?? '?'} at end.`,
        ]
      : []),
    ...(lim
      ? [
          '',
          `Limits: open files (ulimit -n) soft ${lim.nofile_soft}, hard ${lim.nofile_hard}` +
            `${lim.nofile_raised_to ? `, keel run under ${lim.nofile_raised_to} for the fake endpoints` : ' (not raised: enough)'}; ` +
            `fs.inotify.max_user_instances ${lim.inotify_max_user_instances_before} → ${lim.inotify_max_user_instances_after}.` +
            `${lim.notes.length ? ' ' + lim.notes.join(' ') : ''}`,
        ]
      : []),
    '',
  ];
}
