// What a vault costs each command: N runs (default 50) of the real CLI, `keel inventory bench`
// (or `keel secrets get bench db_password`, or a no-op `keel provision bench` against a host the
// caller gives: see `project`), in four set-ups: no vault, a passphrase vault (scrypt, logN 18),
// the same vault unlocked (`keel secrets unlock`), and a vault encrypted to an X25519 identity.
// Wall time from spawn to exit (Node's start-up included), the child's user and system CPU and
// peak RSS (process.resourceUsage() at exit, via a preloaded module), min/median/p90/max.
//
//   npm run build && node dist/bench/vault.js [--runs 50] [--command inventory|get] [--modes none,passphrase,unlocked,identity]
//
// `npm run bench` runs it (bench/main.ts: the vault phase) for `inventory` and for `provision`.
//
// prints one JSON document (VaultBenchResult) on stdout, progress on stderr. From code:
// `await runVaultBench({ runs: 20 })`. Runs are interleaved (one of each mode in turn) so that
// load from other processes on the machine spreads over all modes alike.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateIdentity, identityToRecipient } from 'age-encryption';

export type VaultBenchMode = 'none' | 'passphrase' | 'unlocked' | 'identity';
export type VaultBenchCommand = 'inventory' | 'get' | 'provision';

/** For `provision`: the project the vault is added to (a role and a reachable, converged host). */
export interface VaultBenchProject {
  /** Writes roles/ (and anything else but the inventory) under a mode's project root. */
  write(root: string): Promise<void>;
  /** The inventory's `hosts:` and `groups:` (YAML, top level), after the `vars:` the bench writes. */
  inventoryHosts: string;
}

export interface VaultBenchOptions {
  /** Runs per mode (default 50). */
  runs?: number;
  command?: VaultBenchCommand;
  modes?: VaultBenchMode[];
  /** keel's bin/keel.js (default: the one of this checkout; it needs `npm run build`). */
  keelBin?: string;
  /** Needed for `provision`. */
  project?: VaultBenchProject;
  log?: (line: string) => void;
}

export interface Distribution {
  min: number;
  median: number;
  p90: number;
  max: number;
}

export interface VaultBenchModeResult {
  mode: VaultBenchMode;
  runs: number;
  failures: number;
  wallMs: Distribution;
  userCpuMs: Distribution;
  systemCpuMs: Distribution;
  peakRssMiB: Distribution;
  /** The first failure's stderr, if any run failed. */
  error?: string;
}

export interface VaultBenchResult {
  command: string;
  runsPerMode: number;
  node: string;
  cpus: number;
  loadavgAtStart: number[];
  loadavgAtEnd: number[];
  modes: VaultBenchModeResult[];
}

const PASSPHRASE = 'bench passphrase, not a secret';
const MODES: VaultBenchMode[] = ['none', 'passphrase', 'unlocked', 'identity'];
// Written by the preloaded module in each child: its own rusage at exit.
const RUSAGE_HOOK =
  "import{writeFileSync}from'node:fs';process.on('exit',()=>{const f=process.env.KEEL_BENCH_RUSAGE;" +
  'if(f)writeFileSync(f,JSON.stringify(process.resourceUsage()))})';

interface Sample {
  wallMs: number;
  userCpuMs: number;
  systemCpuMs: number;
  peakRssMiB: number;
}

export async function runVaultBench(opts: VaultBenchOptions = {}): Promise<VaultBenchResult> {
  const runs = opts.runs ?? 50;
  const command = opts.command ?? 'inventory';
  const modes = opts.modes ?? MODES;
  const keelBin = opts.keelBin ?? defaultKeelBin();
  const log = opts.log ?? (() => {});
  if (command === 'provision' && !opts.project) throw new Error('runVaultBench: the provision command needs a project (a role and a host)');
  const loadavgAtStart = loadavg();
  const work = mkdtempSync(join(tmpdir(), 'keel-vault-bench-'));
  // The unlocked key goes to a private tmpfs directory of the bench's, not the user's own.
  const runtime = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/keel-vault-bench-') : null;
  try {
    log(`setting up ${modes.join(', ')} in ${work}`);
    const setups = new Map<VaultBenchMode, Setup>();
    for (const mode of modes) setups.set(mode, await setUp(mode, work, runtime, keelBin, opts.project));
    const samples = new Map<VaultBenchMode, Sample[]>(modes.map((m) => [m, []]));
    const failures = new Map<VaultBenchMode, string[]>(modes.map((m) => [m, []]));
    const args =
      command === 'inventory'
        ? ['inventory', 'bench']
        : command === 'provision'
          ? ['provision', 'bench', '--output', 'json']
          : ['secrets', 'get', 'bench', 'db_password'];
    for (let i = 0; i < runs; i++) {
      for (const mode of modes) {
        if (mode === 'none' && command === 'get') continue; // nothing to get without a vault
        const s = setups.get(mode)!;
        const r = await timed(keelBin, args, s.root, s.env, join(work, 'rusage.json'), command === 'provision' ? checkNoop : undefined);
        if ('error' in r) failures.get(mode)!.push(r.error);
        else samples.get(mode)!.push(r);
      }
      if ((i + 1) % 10 === 0 || i + 1 === runs) log(`${i + 1}/${runs} runs of each mode`);
    }
    return {
      command: `keel ${args.join(' ')}`,
      runsPerMode: runs,
      node: process.version,
      cpus: cpus().length,
      loadavgAtStart,
      loadavgAtEnd: loadavg(),
      modes: modes.filter((m) => !(m === 'none' && command === 'get')).map((mode) => summarize(mode, samples.get(mode)!, failures.get(mode)!)),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (runtime) rmSync(runtime, { recursive: true, force: true });
  }
}

interface Setup {
  root: string;
  env: NodeJS.ProcessEnv;
}

/** A project of its own per mode: one host whose variables use two vault values (the
 *  caller's host and role for `provision`). */
async function setUp(mode: VaultBenchMode, work: string, runtime: string | null, keelBin: string, project?: VaultBenchProject): Promise<Setup> {
  const root = join(work, mode);
  mkdirSync(join(root, 'inventories'), { recursive: true });
  mkdirSync(join(root, 'secrets'));
  await project?.write(root);
  const usesVault = mode !== 'none';
  writeFileSync(
    join(root, 'inventories', 'bench.yaml'),
    `vars:\n  app_name: bench\n${usesVault ? '  database_url: "{{secrets.database_url}}"\n  x_db_password: "{{secrets.db_password}}"\n' : ''}` +
      (project ? project.inventoryHosts : 'hosts:\n  web1: {address: 203.0.113.10, user: deploy}\n'),
  );
  // Only what the mode needs: no passphrase lying around for the unlocked and identity runs.
  const base: NodeJS.ProcessEnv = { ...process.env, HOME: join(work, 'home'), KEEL_VAULT_PASSWORD: undefined, KEEL_AGE_IDENTITY: undefined };
  if (runtime) base.XDG_RUNTIME_DIR = runtime;
  if (!usesVault) return { root, env: base };
  const setupEnv: NodeJS.ProcessEnv = { ...base, KEEL_VAULT_PASSWORD: PASSPHRASE };
  if (mode === 'identity') {
    const identity = await generateIdentity();
    base.KEEL_AGE_IDENTITY = setupEnv.KEEL_AGE_IDENTITY = identity;
    await keel(keelBin, ['secrets', 'init', 'bench', '--recipient', await identityToRecipient(identity)], root, setupEnv);
  } else {
    await keel(keelBin, ['secrets', 'init', 'bench'], root, setupEnv);
  }
  await keel(keelBin, ['secrets', 'set', 'bench', 'database_url'], root, setupEnv, 'postgres://bench@db/bench');
  await keel(keelBin, ['secrets', 'set', 'bench', 'db_password'], root, setupEnv, 'bench-db-password');
  if (mode === 'passphrase') return { root, env: setupEnv };
  if (mode === 'unlocked') {
    if (!runtime) throw new Error('no /dev/shm: cannot bench an unlocked vault here');
    await keel(keelBin, ['secrets', 'unlock', 'bench', '--for', '24h'], root, setupEnv);
  }
  return { root, env: base };
}

function defaultKeelBin(): string {
  // dist/bench/vault.js after a build, or bench/vault.ts run from source
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '..']) {
    const bin = resolve(here, up, 'bin', 'keel.js');
    if (existsSync(bin)) return bin;
  }
  throw new Error('cannot find bin/keel.js; pass keelBin');
}

function keel(bin: string, args: string[], root: string, env: NodeJS.ProcessEnv, stdin = ''): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...env, KEEL_ROOT: root }, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(stdin);
    child.on('error', rej);
    child.on('exit', (code) => (code === 0 ? res() : rej(new Error(`keel ${args.join(' ')} exited with ${code}: ${stderr.trim()}`))));
  });
}

/** One timed run. `check` looks at stdout (a no-op provision must change nothing). */
function timed(
  bin: string,
  args: string[],
  root: string,
  env: NodeJS.ProcessEnv,
  rusageFile: string,
  check?: (stdout: string) => string | undefined,
): Promise<Sample | { error: string }> {
  rmSync(rusageFile, { force: true });
  return new Promise((res) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(RUSAGE_HOOK)}`, bin, ...args], {
      env: { ...env, KEEL_ROOT: root, KEEL_BENCH_RUSAGE: rusageFile },
      stdio: ['ignore', check ? 'pipe' : 'ignore', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let wallMs = 0;
    let code: number | null = null;
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', (err) => res({ error: err.message }));
    // Wall time ends when the process does; its output is read until the pipes close.
    child.on('exit', (c) => {
      wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      code = c;
    });
    child.on('close', () => {
      if (code !== 0) return res({ error: `exit ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` });
      const bad = check?.(stdout);
      if (bad) return res({ error: bad });
      try {
        const u = JSON.parse(readFileSync(rusageFile, 'utf8')) as NodeJS.ResourceUsage;
        res({ wallMs, userCpuMs: u.userCPUTime / 1000, systemCpuMs: u.systemCPUTime / 1000, peakRssMiB: u.maxRSS / 1024 });
      } catch {
        res({ error: 'the child did not report its resource usage' });
      }
    });
  });
}

/** A no-op provision: a JSON report with nothing changed, failed or unreachable. */
function checkNoop(stdout: string): string | undefined {
  try {
    const r = JSON.parse(stdout) as { changed: number; failed: number; unreachable: number };
    if (r.changed || r.failed || r.unreachable) return `not a no-op: changed ${r.changed}, failed ${r.failed}, unreachable ${r.unreachable}`;
    return undefined;
  } catch {
    return `no JSON report: ${stdout.slice(0, 200)}`;
  }
}

function summarize(mode: VaultBenchMode, samples: Sample[], failures: string[]): VaultBenchModeResult {
  const dist = (pick: (s: Sample) => number): Distribution => {
    const v = samples.map(pick).sort((a, b) => a - b);
    const at = (q: number) => round(v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)] ?? NaN);
    return { min: round(v[0] ?? NaN), median: at(0.5), p90: at(0.9), max: round(v[v.length - 1] ?? NaN) };
  };
  return {
    mode,
    runs: samples.length,
    failures: failures.length,
    wallMs: dist((s) => s.wallMs),
    userCpuMs: dist((s) => s.userCpuMs),
    systemCpuMs: dist((s) => s.systemCpuMs),
    peakRssMiB: dist((s) => s.peakRssMiB),
    ...(failures.length ? { error: failures[0] } : {}),
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function parseArgs(argv: string[]): VaultBenchOptions {
  const opts: VaultBenchOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--runs' && value && /^[1-9]\d*$/.test(value)) opts.runs = Number(value);
    else if (flag === '--command' && (value === 'inventory' || value === 'get')) opts.command = value;
    else if (flag === '--modes' && value && value.split(',').every((m) => (MODES as string[]).includes(m))) opts.modes = value.split(',') as VaultBenchMode[];
    else {
      throw new Error(`usage: node dist/bench/vault.js [--runs N] [--command inventory|get] [--modes ${MODES.join(',')}] (bad: ${flag} ${value ?? ''})`);
    }
    i++;
  }
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const result = await runVaultBench({ ...parseArgs(process.argv.slice(2)), log: (l) => process.stderr.write(`[vault bench] ${l}\n`) });
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
