// The 200 → 400 scaling figure: no-ops of the R-resource and the 2R-resource project in pairs,
// the two runs of a pair in turn, each pair after a quiet moment (quiet.ts). Shared by the
// figure on systemd targets and the one on fake endpoints (own-cpu.ts), so both are taken and
// summarized the same way.
import { median, medianInterval, quantile, round } from './report.js';
import { cpuOf, inTurn } from './phases.js';
import { QuietGates, type QuietSummary } from './quiet.js';
import type { KeelProject, ToolRun } from './runners.js';

/** What one series of pairs gives (the fields both scaling figures share). */
export interface PairFigures {
  noop_s: [number | null, number | null];
  growth_pct: number | null;
  /** Median over the pairs of (2R run / R run − 1), %. */
  paired_growth_pct: number | null;
  /** The first and third quartiles of those pairs' growths, %: how far one run's figure strays. */
  paired_growth_quartiles_pct: [number, number] | null;
  /** A 95 % confidence interval of that median (medianInterval): null below 6 pairs. */
  paired_growth_ci95_pct: [number, number] | null;
  pairs: number;
  runs: [number[], number[]];
  /** Median user+sys CPU seconds of the keel process at each size. */
  cpu_s: [number | null, number | null];
  /** Median ms per phase of those runs (KEEL_PHASE_TIMES), at each size. */
  phases_ms: [Record<string, number> | null, Record<string, number> | null];
  quiet: QuietSummary;
}

export interface PairSeries {
  /** The R and the 2R project, each with `env` written for the hosts the series runs on. */
  projects: [KeelProject, KeelProject];
  env: string;
  pairs: number;
  phasesFile: string;
  log: (s: string) => void;
  /** Called just before each run (its size). */
  beforeRun?: (size: 0 | 1) => Promise<void>;
  /** Why a run does not count (null: it does); called after each run. */
  check: (size: 0 | 1, r: ToolRun) => Promise<string | null>;
  /** Each refused run, with its reason. */
  onError: (message: string) => void;
}

/** The series' runs (a run counts only when check() accepts it, a pair only when both do). */
export async function runPairs(s: PairSeries): Promise<{ runs: [ToolRun[], ToolRun[]]; ratios: number[]; quiet: QuietSummary }> {
  const runs: [ToolRun[], ToolRun[]] = [[], []];
  /** 2R / R, per pair whose two runs both counted. */
  const ratios: number[] = [];
  const quiet = new QuietGates();
  for (let rep = 0; rep < s.pairs; rep++) {
    await quiet.wait();
    const pair: (ToolRun | undefined)[] = [];
    for (const i of inTurn<0 | 1>(rep, 0, 1)) {
      const project = s.projects[i];
      s.log(`${s.env}: no-op ${project.workload.resources} resources, pair ${rep + 1}/${s.pairs}`);
      await s.beforeRun?.(i);
      const r = await project.provision(s.env, { phasesFile: s.phasesFile });
      const why = await s.check(i, r);
      if (why) s.onError(`${s.env}, no-op of ${project.workload.resources} resources, pair ${rep + 1}: ${why}`);
      else (runs[i].push(r), (pair[i] = r));
    }
    if (pair[0] && pair[1]) ratios.push(pair[1].seconds / pair[0].seconds);
  }
  return { runs, ratios, quiet: quiet.summary() };
}

/** The medians, the paired growth and its quartiles of a series. */
export function pairFigures(x: Awaited<ReturnType<typeof runPairs>>): PairFigures {
  const { runs, ratios } = x;
  const t = runs.map((rs) => median(rs.map((r) => r.seconds))) as [number | null, number | null];
  return {
    noop_s: [round(t[0]), round(t[1])],
    growth_pct: t[0] && t[1] ? round(((t[1] - t[0]) / t[0]) * 100, 1) : null,
    paired_growth_pct: growthPct(median(ratios)),
    paired_growth_quartiles_pct: pct(ratios.length ? [quantile(ratios, 0.25)!, quantile(ratios, 0.75)!] : null),
    paired_growth_ci95_pct: pct(medianInterval(ratios)),
    pairs: ratios.length,
    runs: [runs[0].map((r) => round(r.seconds)!), runs[1].map((r) => round(r.seconds)!)],
    cpu_s: runs.map((rs) => round(median(rs.map(cpuOf).filter((v): v is number => v !== null)))) as [number | null, number | null],
    phases_ms: [medianPhases(runs[0]), medianPhases(runs[1])],
    quiet: x.quiet,
  };
}

const growthPct = (ratio: number | null) => (ratio !== null ? round((ratio - 1) * 100, 1) : null);
const pct = (r: [number, number] | null): [number, number] | null => (r ? [growthPct(r[0])!, growthPct(r[1])!] : null);

/** Median ms of each phase of keel's runs (KEEL_PHASE_TIMES), and of the wall. */
export function medianPhases(rs: ToolRun[]): Record<string, number> | null {
  const ps = rs.map((r) => r.phases).filter((p): p is NonNullable<ToolRun['phases']> => !!p);
  if (!ps.length) return null;
  const names = [...new Set(ps.flatMap((p) => Object.keys(p.phases)))];
  return {
    ...Object.fromEntries(names.map((n) => [n, round(median(ps.map((p) => p.phases[n] ?? 0)), 1)!])),
    wall: round(median(ps.map((p) => p.wall_ms)), 1)!,
  };
}
