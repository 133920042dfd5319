// The result document (bench/results/latest.json), the table (terminal and latest.md) and the
// PASS/MISS verdict per target.

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
  options: Record<string, unknown>;
  targets_kind: string;
  timing: string;
  scenarios: Scenario[];
  scaling: {
    hosts: number;
    resources: [number, number];
    noop_s: [number | null, number | null];
    round_trips_per_host: [number | null, number | null];
    growth_pct: number | null;
    runs: [number[], number[]];
  } | null;
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
  equivalence: { compared: string; tool: string; equal: boolean; diff?: string }[];
  targets: Target[];
  notes: string[];
  errors: string[];
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function round(x: number | null, digits = 3): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const fmt = (x: number | null, d = 2) => (x === null ? '—' : x.toFixed(d));
const ratio = (x: number | null) => (x === null ? '—' : `${x.toFixed(1)}×`);

export function table(result: BenchResult): string {
  const rows = [
    '| scenario | hosts | resources | keel (s) | Ansible (s) | Ansible+Mitogen (s) | keel vs Ansible | keel vs Mitogen | keel round trips/host | keel peak RSS (MB) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...result.scenarios.map(
      (s) =>
        `| ${s.name} | ${s.hosts}${s.endpoints ? '*' : ''} | ${s.resources} | ${fmt(s.keel_s)} | ${fmt(s.ansible_s)} | ${fmt(s.mitogen_s)} | ${ratio(s.ratio_ansible)} | ${ratio(s.ratio_mitogen)} | ${fmt(s.keel_round_trips_per_host, 0)} | ${fmt(s.keel_peak_rss_mb, 0)} |`,
    ),
  ];
  return rows.join('\n');
}

export function targetLines(result: BenchResult): string[] {
  return result.targets.map((t) => `${t.pass === null ? 'N/A ' : t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.measured} (target ${t.goal})${t.note ? ` — ${t.note}` : ''}`);
}

export function markdown(result: BenchResult): string {
  const o = result.overhead;
  const sc = result.scaling;
  return [
    `# keel benchmark results`,
    '',
    `${result.date} · ${result.machine.cpu_model} × ${result.machine.cpus} · ${result.versions.os} · node ${result.versions.node} · ${result.versions.ansible_core ?? 'ansible-core not run'} · mitogen ${result.versions.mitogen ?? '—'}`,
    '',
    `Command: \`${result.command}\`. Targets: ${result.targets_kind}. ${result.timing}`,
    '',
    table(result),
    '',
    ...(result.scenarios.some((s) => s.endpoints) ? ['\\* light endpoints: sshd-only containers, role without service resources (see notes).', ''] : []),
    ...(sc
      ? [`No-op scaling (keel, ${sc.hosts} hosts): ${sc.resources[0]} resources ${fmt(sc.noop_s[0])} s → ${sc.resources[1]} resources ${fmt(sc.noop_s[1])} s (${fmt(sc.growth_pct, 1)} %), round trips/host ${fmt(sc.round_trips_per_host[0], 0)} → ${fmt(sc.round_trips_per_host[1], 0)}.`, '']
      : []),
    ...(o
      ? [`keel's own overhead, first converge, ${o.hosts} host, ${o.resources} resources: CLI ${fmt(o.cli_s)} s, run (connect + scripts) ${fmt(o.report_s)} s, remote commands ${fmt(o.remote_s)} s → overhead ${fmt(o.overhead_cli_pct, 1)} % of the CLI time, ${fmt(o.overhead_run_pct, 1)} % of the run time. ${o.method}`, '']
      : []),
    '## Targets',
    '',
    ...targetLines(result).map((l) => `- ${l}`),
    '',
    ...(result.notes.length ? ['## Notes', '', ...result.notes.map((n) => `- ${n}`), ''] : []),
    ...(result.errors.length ? ['## Errors', '', ...result.errors.map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}
