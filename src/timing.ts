// Where one CLI run's time goes, phase by phase, for the bench (bench/README.md, "Phases of
// one run"). With KEEL_PHASE_TIMES=FILE the CLI writes the phases as JSON to FILE when the
// process exits; without it every call below is one test of a constant and nothing is kept.
//
// Two kinds of phase:
// - work on the controller's one thread (inventory, roles, render, decide...): timed() and
//   timedAsync() around a step of the command's own flow. They nest, and a phase's time
//   excludes the phases timed inside it, so these add up to the thread's busy time.
// - waits on hosts (connect, probe): waitStart()/waitEnd() per host. Hosts wait at once, so
//   such a phase is the union of its hosts' intervals (first start to last end, gaps out),
//   and it may overlap with work (a connection opened while the roles compile).
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const FILE = process.env.KEEL_PHASE_TIMES;
const on = !!FILE;

/** Set by bin/keel.js before it loads the CLI: performance.now() when its code began. */
const ENTERED = Symbol.for('keel.entered');

const work = new Map<string, number>();
const stack: { phase: string; since: number }[] = [];
const waits = new Map<string, { open: Map<string, number>; spans: [number, number][] }>();
let mainStarted: number | undefined;
let mainEnded: number | undefined;

function add(phase: string, ms: number): void {
  work.set(phase, (work.get(phase) ?? 0) + ms);
}

function enter(phase: string): void {
  const now = performance.now();
  const top = stack[stack.length - 1];
  if (top) add(top.phase, now - top.since);
  stack.push({ phase, since: now });
}

function leave(): void {
  const now = performance.now();
  const me = stack.pop();
  if (me) add(me.phase, now - me.since);
  const parent = stack[stack.length - 1];
  if (parent) parent.since = now;
}

/** `f` is work of `phase` (nested phases excluded). */
export function timed<T>(phase: string, f: () => T): T {
  if (!on) return f();
  enter(phase);
  try {
    return f();
  } finally {
    leave();
  }
}

/** An awaited step of the command's own sequential flow (nothing else is timed meanwhile). */
export async function timedAsync<T>(phase: string, f: () => Promise<T>): Promise<T> {
  if (!on) return f();
  enter(phase);
  try {
    return await f();
  } finally {
    leave();
  }
}

/** A host begins to wait for `phase` (its connection, its probe's answer). */
export function waitStart(phase: string, host: string): void {
  if (!on) return;
  let w = waits.get(phase);
  if (!w) waits.set(phase, (w = { open: new Map(), spans: [] }));
  w.open.set(host, performance.now());
}

export function waitEnd(phase: string, host: string): void {
  const w = on ? waits.get(phase) : undefined;
  const start = w?.open.get(host);
  if (!w || start === undefined) return;
  w.open.delete(host);
  w.spans.push([start, performance.now()]);
}

/** main() began and ended: what comes before is start-up, after is the process's exit. */
export function mainStarts(): void {
  if (on) mainStarted = performance.now();
}

export function mainEnds(): void {
  if (on) mainEnded = performance.now();
}

function union(spans: [number, number][]): number {
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of [...spans].sort((x, y) => x[0] - y[0])) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

export interface PhaseTimes {
  schema: 'keel-phase-times/1';
  argv: string[];
  /** From the process's start to its exit. */
  wall_ms: number;
  /** ms by phase: process_start, module_load, then work and waits in the order first seen, exit. */
  phases: Record<string, number>;
  /** The kind of each phase: `work` on the controller's thread or a `wait` on hosts. */
  kinds: Record<string, 'start' | 'work' | 'wait' | 'exit'>;
  /** Each wait's first start and last end, ms from the process's start: where it overlapped. */
  waits: Record<string, { from_ms: number; to_ms: number }>;
  /** wall − the sum of the phases: the thread idle outside any wait (negative when waits
   *  overlapped with work). */
  unaccounted_ms: number;
}

/** The phases so far (what the process writes to KEEL_PHASE_TIMES when it exits). */
export function phaseTimes(): PhaseTimes {
  const end = performance.now();
  const entered = (globalThis as Record<symbol, unknown>)[ENTERED];
  const phases: Record<string, number> = {};
  const kinds: PhaseTimes['kinds'] = {};
  const put = (name: string, ms: number, kind: PhaseTimes['kinds'][string]) => {
    phases[name] = Math.round(ms * 10) / 10;
    kinds[name] = kind;
  };
  if (typeof entered === 'number') put('process_start', entered, 'start');
  // Loading the CLI's modules until main() runs, and those a command loads when it runs.
  const before = typeof entered === 'number' && mainStarted !== undefined ? mainStarted - entered : 0;
  put('module_load', before + (work.get('module_load') ?? 0), 'work');
  for (const [name, ms] of work) if (name !== 'module_load') put(name, ms, 'work');
  const spans: PhaseTimes['waits'] = {};
  for (const [name, w] of waits) {
    put(name, union(w.spans), 'wait');
    const r1 = (x: number) => Math.round(x * 10) / 10;
    const from = w.spans.reduce((a, s) => Math.min(a, s[0]), Infinity);
    const to = w.spans.reduce((a, s) => Math.max(a, s[1]), -Infinity);
    if (w.spans.length) spans[name] = { from_ms: r1(from), to_ms: r1(to) };
  }
  if (mainEnded !== undefined) put('exit', end - mainEnded, 'exit');
  const sum = Object.values(phases).reduce((a, b) => a + b, 0);
  return {
    schema: 'keel-phase-times/1',
    argv: process.argv.slice(2),
    wall_ms: Math.round(end * 10) / 10,
    phases,
    kinds,
    waits: spans,
    unaccounted_ms: Math.round((end - sum) * 10) / 10,
  };
}

if (on) process.on('exit', () => writeFileSync(FILE!, JSON.stringify(phaseTimes()) + '\n'));
