// Speed a user feels (issues 22 and 17): a one-host no-op of a small role, `keel plan` on the
// demo's three hosts, and a code-only deploy of the sample app to web1 + worker1, each run
// many times in one alternated series, with this checkout's keel and (--baseline DIR) another
// checkout's, on the same kind of targets. keel's runs carry their phase times
// (KEEL_PHASE_TIMES, src/timing.ts): the medians say where the time goes; a deploy's steps come
// from its --output json.
//
// The demo stacks are made by each checkout's own scripts/demo.mjs (warm targets web1,
// worker1, db1: the stack provisioned, the sample app deployed from main), one stack per
// checkout, in temp roots; they are removed at the end (and on SIGINT/SIGTERM).
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PhaseTimes } from '../src/timing.js';
import type { Ctx } from './phases.js';
import { median, round } from './report.js';
import { KeelProject } from './runners.js';
import { makeWorkload } from './workload.js';
import { QuietGates, type QuietSummary } from './quiet.js';

/** One keel checkout that is measured: this one, or the baseline. */
export interface Keel {
  label: 'keel' | 'baseline';
  dir: string;
  /** `git describe`-ish: the commit it is at. */
  commit: string | null;
}

export interface Series {
  /** Wall seconds of each run, in run order. */
  wall_s: number[];
  median_s: number | null;
  /** Median ms per phase over the runs (this checkout only: KEEL_PHASE_TIMES). */
  phases_ms?: Record<string, number> | null;
  errors: string[];
}

export interface DeploySeries extends Series {
  /** The report's durationMs (connect + every step), median, seconds. */
  report_s: number | null;
  /** Per host, per deploy phase (build, start, switch, reload, health...): the median of the
   *  sum of its steps' durationMs over the runs. */
  phases_by_host: Record<string, Record<string, number>>;
  /** Per host, each step's median durationMs (phase/step). */
  steps_by_host: Record<string, Record<string, number>>;
}

export interface Felt {
  method: string;
  baseline: Keel | null;
  keel: Keel;
  small_noop: {
    hosts: 1;
    resources: number;
    runs: number;
    load1: [number, number];
    keel: Series;
    baseline: Series | null;
    ratio: number | null;
    quiet?: QuietSummary;
  } | null;
  demo_plan: { hosts: number; runs: number; load1: [number, number]; keel: Series; baseline: Series | null; ratio: number | null; quiet?: QuietSummary } | null;
  deploy: { hosts: string[]; runs: number; load1: [number, number]; keel: DeploySeries; baseline: DeploySeries | null; ratio: number | null } | null;
}

export interface FeltOptions {
  runs: number;
  deployRuns: number;
  baseline: string | null;
  resources: number;
  deploy: boolean;
}

const load1 = () => round(loadavg()[0]!, 2)!;

export function keelAt(dir: string, label: Keel['label']): Keel {
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['-C', dir, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim().slice(0, 120);
  } catch {
    commit = null;
  }
  return { label, dir, commit };
}

export async function feltPhase(ctx: Ctx, work: string, keelRoot: string, o: FeltOptions): Promise<Felt> {
  const keel = keelAt(keelRoot, 'keel');
  const baseline = o.baseline ? keelAt(o.baseline, 'baseline') : null;
  if (baseline && !existsSync(join(baseline.dir, 'bin', 'keel.js'))) throw new Error(`--baseline ${baseline.dir}: no bin/keel.js there`);
  const keels = baseline ? [keel, baseline] : [keel];
  const small = await smallNoop(ctx, work, keelRoot, keels, o);
  let demo: Felt['demo_plan'] = null;
  let deploy: Felt['deploy'] = null;
  if (o.deploy) {
    const stacks: Stack[] = [];
    try {
      for (const k of keels) stacks.push(await demoStack(ctx, work, k));
      demo = await demoPlan(ctx, stacks, o.runs);
      deploy = await codeOnlyDeploys(ctx, stacks, o.deployRuns);
    } finally {
      for (const s of stacks) await removeStack(s).catch((e: Error) => ctx.errors.push(`removing the demo stack in ${s.root}: ${e.message}`));
    }
  }
  return {
    method:
      'Each series alternates this checkout (keel) and --baseline (when given) run by run, on the same targets, from a fresh process each ' +
      '(`node bin/keel.js ...`, Node start-up included); wall time from spawn to exit; medians. keel runs with KEEL_PHASE_TIMES: ' +
      'phases are medians over its runs (work phases on the controller thread; waits on hosts as the union over hosts, which may ' +
      'overlap the work). Small no-op: a systemd target converged with the bench role at the given size, `provision --output json`, ' +
      'each checkout in its own copy of the project (its own .keel/cache/roles/). ' +
      'Demo: each checkout sets up its own stack with its scripts/demo.mjs (warm targets web1, worker1, db1, stack provisioned, the ' +
      'sample app deployed from main), then `keel plan local` on the three hosts. Deploy: each run commits a code-only change ' +
      '(one line appended to a Django template) on a new branch of the demo app repository and runs `keel deploy local --branch ' +
      'bench-N --output json`; phases are the sums of their steps durationMs, medians.',
    keel,
    baseline,
    small_noop: small,
    demo_plan: demo,
    deploy,
  };
}

// ---------------------------------------------------------------------------------------------
// Running a keel command, timed

interface Timed {
  seconds: number;
  code: number | null;
  stdout: string;
  stderr: string;
  phases: PhaseTimes | null;
}

async function timedKeel(k: Keel, args: string[], root: string, phasesFile: string | null, env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  if (phasesFile) await rm(phasesFile, { force: true });
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(k.dir, 'bin', 'keel.js'), ...args], {
      cwd: root,
      env: { ...process.env, KEEL_ROOT: root, ...env, ...(phasesFile ? { KEEL_PHASE_TIMES: phasesFile } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      let phases: PhaseTimes | null = null;
      if (phasesFile && existsSync(phasesFile)) {
        try {
          phases = JSON.parse(readFileSync(phasesFile, 'utf8')) as PhaseTimes;
        } catch {
          phases = null;
        }
      }
      resolve({ seconds, code, stdout, stderr, phases });
    });
  });
}

function series(runs: Timed[], errors: string[], withPhases: boolean): Series {
  const ok = runs.filter((r) => r.code === 0);
  const s: Series = { wall_s: ok.map((r) => round(r.seconds)!), median_s: round(median(ok.map((r) => r.seconds))), errors };
  if (withPhases) s.phases_ms = medianPhases(ok.map((r) => r.phases).filter((p): p is PhaseTimes => p !== null));
  return s;
}

function medianPhases(ps: PhaseTimes[]): Record<string, number> | null {
  if (!ps.length) return null;
  const names = [...new Set(ps.flatMap((p) => Object.keys(p.phases)))];
  const out: Record<string, number> = {};
  for (const n of names) out[n] = round(median(ps.map((p) => p.phases[n] ?? 0)), 1)!;
  out.wall = round(median(ps.map((p) => p.wall_ms)), 1)!;
  return out;
}

const ratioOf = (base: Series | null, mine: Series) => (base?.median_s && mine.median_s ? round(base.median_s / mine.median_s, 2) : null);

// ---------------------------------------------------------------------------------------------
// A one-host no-op of a small role

async function smallNoop(ctx: Ctx, work: string, keelRoot: string, keels: Keel[], o: FeltOptions): Promise<Felt['small_noop']> {
  const [host] = await ctx.pool.grow(1);
  const project = await KeelProject.create(join(work, 'keel-felt'), makeWorkload(o.resources), keelRoot);
  await project.writeInventory('felt', [host!], ctx.pool.keyFile, ctx.pool.knownHostsFile);
  ctx.log(`felt: converging ${host!.name} with a ${o.resources}-resource role`);
  const conv = await project.provision('felt');
  if (conv.error) throw new Error(`felt: converging ${host!.name} failed: ${conv.error}`);
  const args = ['provision', 'felt', '--output', 'json'];
  // Each checkout runs in its own copy of the project: keel keeps its parsed roles in the
  // project's .keel/cache/roles/ under its build's id and drops a role's other entries, so two
  // checkouts taking turns in one project would each find the other's and parse every run
  // (about 20 ms), which no user of one keel sees. Then each one's first run (not counted).
  const dirOf = (k: Keel) => (k.label === 'keel' ? project.dir : `${project.dir}-${k.label}`);
  for (const k of keels) {
    if (dirOf(k) !== project.dir) cpSync(project.dir, dirOf(k), { recursive: true });
    await timedKeel(k, args, dirOf(k), null);
  }
  const runs = new Map<Keel['label'], Timed[]>(keels.map((k) => [k.label, []]));
  const errors = new Map<Keel['label'], string[]>(keels.map((k) => [k.label, []]));
  const start = load1();
  const quiet = new QuietGates();
  for (let i = 0; i < o.runs; i++) {
    await quiet.wait();
    for (const k of i % 2 ? [...keels].reverse() : keels) {
      const r = await timedKeel(k, args, dirOf(k), k.label === 'keel' ? join(work, 'felt-phases.json') : null);
      const changed = r.code === 0 ? (JSON.parse(r.stdout) as { changed: number }).changed : null;
      if (r.code !== 0 || changed !== 0) errors.get(k.label)!.push(`run ${i + 1}: exit ${r.code}, changed ${changed}: ${r.stderr.slice(-300)}`);
      else runs.get(k.label)!.push(r);
    }
  }
  ctx.log(`felt: small no-op, ${o.runs} runs each`);
  const mine = series(runs.get('keel')!, errors.get('keel')!, true);
  const base = keels.length > 1 ? series(runs.get('baseline')!, errors.get('baseline')!, false) : null;
  return {
    hosts: 1,
    resources: o.resources,
    runs: o.runs,
    load1: [start, load1()],
    keel: mine,
    baseline: base,
    ratio: ratioOf(base, mine),
    quiet: quiet.summary(),
  };
}

// ---------------------------------------------------------------------------------------------
// The demo's stack: plan, and code-only deploys

interface Stack {
  keel: Keel;
  root: string;
}

/** The roots of the demo stacks this process made: removed on SIGINT/SIGTERM too. */
const liveRoots = new Set<string>();

export function destroyStacksNow(): void {
  for (const root of liveRoots) {
    try {
      const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=keel.target.root=${root}`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
      if (ids.length) execFileSync('docker', ['rm', '-f', '-v', ...ids], { stdio: 'ignore' });
    } catch {
      /* best effort */
    }
  }
}

async function demoStack(ctx: Ctx, work: string, k: Keel): Promise<Stack> {
  const root = await mkdtemp(join(tmpdir(), `keel-bench-demo-${k.label}-`));
  liveRoots.add(root);
  const warm = execFileSync('sh', [join(k.dir, 'scripts', 'build-warm-image.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .pop()!;
  ctx.log(`felt: the demo stack of ${k.label} (${k.commit ?? k.dir}) in ${root}, image ${warm}: scripts/demo.mjs`);
  const logFile = join(work, `demo-${k.label}.log`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [join(k.dir, 'scripts', 'demo.mjs')], {
      cwd: root,
      env: { ...process.env, KEEL_ROOT: root, KEEL_TARGET_IMAGE: warm },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d) => void appendFile(logFile, d));
    child.stderr.on('data', (d) => void appendFile(logFile, d));
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) {
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-1500) : '';
    throw new Error(`the demo of ${k.label} exited ${code}: ${tail}`);
  }
  return { keel: k, root };
}

async function removeStack(s: Stack): Promise<void> {
  await timedKeel(s.keel, ['target', 'down', '--forget'], s.root, null);
  destroyStacksNow();
  liveRoots.delete(s.root);
  await rm(s.root, { recursive: true, force: true });
}

async function demoPlan(ctx: Ctx, stacks: Stack[], n: number): Promise<Felt['demo_plan']> {
  const runs = new Map<Keel['label'], Timed[]>(stacks.map((s) => [s.keel.label, []]));
  const errors = new Map<Keel['label'], string[]>(stacks.map((s) => [s.keel.label, []]));
  // The demo itself ran provision: roles are parsed and kept already.
  const start = load1();
  ctx.log(`felt: keel plan local on the demo's three hosts, ${n} runs each`);
  const quiet = new QuietGates();
  for (let i = 0; i < n; i++) {
    await quiet.wait();
    for (const s of i % 2 ? [...stacks].reverse() : stacks) {
      const phases = s.keel.label === 'keel' ? join(s.root, 'plan-phases.json') : null;
      const r = await timedKeel(s.keel, ['plan', 'local', '--output', 'json'], s.root, phases);
      const changed = r.code === 0 ? (JSON.parse(r.stdout) as { changed: number }).changed : null;
      if (r.code !== 0 || changed !== 0) errors.get(s.keel.label)!.push(`run ${i + 1}: exit ${r.code}, would change ${changed}: ${r.stderr.slice(-300)}`);
      else runs.get(s.keel.label)!.push(r);
    }
  }
  const mine = series(runs.get('keel')!, errors.get('keel')!, true);
  const base = stacks.length > 1 ? series(runs.get('baseline')!, errors.get('baseline')!, false) : null;
  return { hosts: 3, runs: n, load1: [start, load1()], keel: mine, baseline: base, ratio: ratioOf(base, mine), quiet: quiet.summary() };
}

interface DeployJson {
  status: string;
  durationMs: number;
  hosts: { name: string; steps: { phase: string; name: string; status: string; durationMs: number | null }[] }[];
}

async function codeOnlyDeploys(ctx: Ctx, stacks: Stack[], n: number): Promise<Felt['deploy']> {
  const runs = new Map<Keel['label'], { t: Timed; report: DeployJson }[]>(stacks.map((s) => [s.keel.label, []]));
  const errors = new Map<Keel['label'], string[]>(stacks.map((s) => [s.keel.label, []]));
  const start = load1();
  ctx.log(`felt: code-only deploys of the sample app, ${n} runs each`);
  for (let i = 0; i < n; i++) {
    for (const s of i % 2 ? [...stacks].reverse() : stacks) {
      const branch = await codeOnlyBranch(s.root, `bench-${i + 1}`);
      const r = await timedKeel(s.keel, ['deploy', 'local', '--branch', branch, '--output', 'json'], s.root, null);
      let report: DeployJson | null = null;
      try {
        report = JSON.parse(r.stdout) as DeployJson;
      } catch {
        report = null;
      }
      if (r.code !== 0 || !report || report.status !== 'deployed') {
        errors.get(s.keel.label)!.push(`run ${i + 1}: exit ${r.code}, status ${report?.status ?? '?'}: ${r.stderr.slice(-400)}`);
      } else runs.get(s.keel.label)!.push({ t: r, report });
    }
  }
  const deploySeries = (label: Keel['label']): DeploySeries => {
    const rs = runs.get(label)!;
    const byHost = (f: (steps: DeployJson['hosts'][number]['steps']) => Record<string, number>) => {
      const hosts = [...new Set(rs.flatMap((r) => r.report.hosts.map((h) => h.name)))];
      return Object.fromEntries(
        hosts.map((h) => {
          const per = rs.map((r) => f(r.report.hosts.find((x) => x.name === h)?.steps ?? []));
          const keys = [...new Set(per.flatMap((p) => Object.keys(p)))];
          return [h, Object.fromEntries(keys.map((k) => [k, round(median(per.map((p) => p[k] ?? 0)), 0)!]))];
        }),
      );
    };
    const sum = (key: (s: DeployJson['hosts'][number]['steps'][number]) => string) => (steps: DeployJson['hosts'][number]['steps']) => {
      const o: Record<string, number> = {};
      for (const s of steps) o[key(s)] = (o[key(s)] ?? 0) + (s.durationMs ?? 0);
      return o;
    };
    return {
      ...series(
        rs.map((r) => r.t),
        errors.get(label)!,
        false,
      ),
      report_s: round(median(rs.map((r) => r.report.durationMs / 1000))),
      phases_by_host: byHost(sum((s) => s.phase)),
      steps_by_host: byHost(sum((s) => `${s.phase}/${s.name}`)),
    };
  };
  const mine = deploySeries('keel');
  const base = stacks.length > 1 ? deploySeries('baseline') : null;
  return { hosts: ['web1', 'worker1'], runs: n, load1: [start, load1()], keel: mine, baseline: base, ratio: ratioOf(base, mine) };
}

/** A new branch of the demo's app repository: main plus one line appended to a template. */
async function codeOnlyBranch(root: string, branch: string): Promise<string> {
  const repo = join(root, '.keel', 'demo', 'app-repo');
  const env = {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'keel bench',
    GIT_AUTHOR_EMAIL: 'bench@keel.invalid',
    GIT_COMMITTER_NAME: 'keel bench',
    GIT_COMMITTER_EMAIL: 'bench@keel.invalid',
  };
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  git('checkout', '-q', '-B', branch, 'main');
  const template = join(repo, 'counter', 'templates', 'counter', 'index.html');
  await appendFile(template, `<!-- ${branch} -->\n`);
  git('commit', '-q', '-am', `${branch}: a template change only`);
  git('checkout', '-q', 'main');
  return branch;
}
