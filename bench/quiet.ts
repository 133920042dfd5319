// A quiet moment before a timed pair. This machine's two cores are shared with other people's
// jobs, and a keel no-op is CPU-bound: a burst of someone else's work that lands on one run of a
// pair and not the other moves that pair's ratio by more than the figure being measured (a full
// run's 200 -> 400 came out at +23.5 % where three runs around it gave +5 to +7 %). Before each
// pair the bench waits, with a bound, until the whole machine was less than a quarter busy for a
// second, and the results say how long it waited and how many pairs started busy all the same.
import { readFileSync } from 'node:fs';

export interface QuietOptions {
  /** Busy share of all cores (0..1) below which the machine counts as quiet. */
  below: number;
  /** How long each look at the machine lasts. */
  windowMs: number;
  /** The most to wait; the pair then starts anyway and counts as started busy. */
  maxWaitMs: number;
}

export const QUIET: QuietOptions = { below: 0.25, windowMs: 1000, maxWaitMs: 30_000 };

export interface QuietGate {
  waitedMs: number;
  /** The busy share of the last look (null: the machine's counters cannot be read). */
  busy: number | null;
  quiet: boolean;
}

/** Jiffies busy and in all, summed over the cores (steal counts as busy: a neighbour's work). */
function cpuTimes(): { busy: number; total: number } | null {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = first.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null;
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - f[3]! - f[4]!, total };
  } catch {
    return null;
  }
}

async function busyShare(windowMs: number): Promise<number | null> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, windowMs));
  const b = cpuTimes();
  if (!a || !b || b.total <= a.total) return null;
  return (b.busy - a.busy) / (b.total - a.total);
}

/** Returns once the machine was quiet for one window, or after opts.maxWaitMs. */
export async function quietMoment(opts: QuietOptions = QUIET): Promise<QuietGate> {
  const start = Date.now();
  for (;;) {
    const busy = await busyShare(opts.windowMs);
    if (busy === null) return { waitedMs: Date.now() - start, busy: null, quiet: true };
    if (busy < opts.below) return { waitedMs: Date.now() - start, busy, quiet: true };
    if (Date.now() - start >= opts.maxWaitMs) return { waitedMs: Date.now() - start, busy, quiet: false };
  }
}

/** The gates of one series of pairs: wait() before each pair, summary() for the results. */
export class QuietGates {
  private readonly gates: QuietGate[] = [];

  async wait(): Promise<void> {
    this.gates.push(await quietMoment());
  }

  summary(): QuietSummary {
    return summarize(this.gates);
  }
}

/** What the results say about the gates of one series of pairs. */
export interface QuietSummary {
  pairs: number;
  /** Pairs that started after the bound, with the machine still busy. */
  started_busy: number;
  /** Seconds waited in all, beyond the one-second look every pair takes. */
  waited_s: number;
  below_busy_share: number;
  max_wait_s: number;
}

export function summarize(gates: QuietGate[], opts: QuietOptions = QUIET): QuietSummary {
  const waited = gates.reduce((s, g) => s + Math.max(0, g.waitedMs - opts.windowMs), 0);
  return {
    pairs: gates.length,
    started_busy: gates.filter((g) => !g.quiet).length,
    waited_s: Math.round(waited / 100) / 10,
    below_busy_share: opts.below,
    max_wait_s: opts.maxWaitMs / 1000,
  };
}

/** One sentence for the report. */
export function describeQuiet(q: QuietSummary | null | undefined): string {
  if (!q) return '';
  return (
    ` Each pair started once the whole machine had been less than ${Math.round(q.below_busy_share * 100)} % busy for a second ` +
    `(at most ${q.max_wait_s} s of waiting): ${q.waited_s} s waited in all, ${q.started_busy} of ${q.pairs} pairs started busy all the same.`
  );
}
