// The bench's newer phases (bench/main.ts runs them): the 200 → 400 breakdown, the vault's
// cost, recording a converged host's probe output, the no-op against fake SSH endpoints, the
// controller's CPU per host; and the machine's limits and load while it all ran.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions } from './options.js';
import type { NoopProfile } from './profile.js';
import { recordProbe } from './record.js';
import type { ProbeRecording } from './replay.js';
import {
  median,
  round,
  type Breakdown,
  type ControllerCpu,
  type FakeScale,
  type FakeScaleRow,
  type Limits,
  type LoadSummary,
  type Scenario,
  type VaultPhase,
} from './report.js';
import { KeelProject, type AnsibleProject, type Tool, type ToolRun } from './runners.js';
import type { BenchHost, TargetPool } from './targets.js';
import { runVaultBench } from './vault.js';
import { writeKeelRole, type Workload } from './workload.js';
import { FakeHosts } from './fake-hosts.js';

export interface Ctx {
  opts: BenchOptions;
  pool: TargetPool;
  workload: Workload;
  keel: KeelProject;
  ansible: AnsibleProject | null;
  /** Tools that cannot run here, with the reason (e.g. Mitogen refusing this ansible-core). */
  unavailable: Map<Tool, string>;
  notes: string[];
  errors: string[];
  log: (s: string) => void;
}

export const cpuOf = (r: ToolRun): number | null => (r.cpuUserS != null && r.cpuSysS != null ? r.cpuUserS + r.cpuSysS : null);

// ---------------------------------------------------------------------------------------------
// 200 → 400: where the time goes

const PROFILE_JS = fileURLToPath(new URL('./profile.js', import.meta.url));

/** One profile in a fresh process (cold, as the CLI is). */
/** Two runs in turn: this order on even repeats, the other on odd ones (neither always first). */
export function inTurn<T>(rep: number, a: T, b: T): [T, T] {
  return rep % 2 === 0 ? [a, b] : [b, a];
}

export function runProfile(root: string, env: string): Promise<NoopProfile> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PROFILE_JS, '--root', root, '--env', env], {
      cwd: root,
      env: { ...process.env, KEEL_ROOT: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`profile of ${env} in ${root} exited ${code}: ${err.trim().slice(-600)}`));
      try {
        resolve(JSON.parse(out) as NoopProfile);
      } catch {
        reject(new Error(`profile printed no JSON: ${out.slice(0, 300)}`));
      }
    });
  });
}

/** Field-by-field median of profiles of the same shape. */
export function medianProfile(ps: NoopProfile[]): NoopProfile | null {
  if (!ps.length) return null;
  const walk = (xs: unknown[]): unknown => {
    const first = xs[0];
    if (typeof first === 'number') return round(median(xs as number[]), 1);
    if (Array.isArray(first)) return [...new Set((xs as string[][]).flat())].slice(0, 10);
    if (first && typeof first === 'object') {
      return Object.fromEntries(Object.keys(first).map((k) => [k, walk(xs.map((x) => (x as Record<string, unknown>)[k]))]));
    }
    return first;
  };
  return walk(ps) as NoopProfile;
}

export async function breakdownPhase(
  ctx: Ctx,
  small: KeelProject,
  large: KeelProject,
  env: string,
  hosts: number,
  cli: { s: [number | null, number | null]; cpu: [number | null, number | null] },
): Promise<Breakdown> {
  const runs: [NoopProfile[], NoopProfile[]] = [[], []];
  for (let rep = 0; rep < ctx.opts.repeats; rep++) {
    const order = inTurn<[0 | 1, KeelProject]>(rep, [0, small], [1, large]);
    for (const [i, p] of order) {
      ctx.log(`breakdown: no-op ${p.workload.resources} resources taken apart, repeat ${rep + 1}/${ctx.opts.repeats}`);
      const prof = await runProfile(p.dir, env);
      if (prof.not_ok.length) ctx.errors.push(`breakdown ${p.workload.resources} resources: not a no-op: ${prof.not_ok.slice(0, 3).join('; ')}`);
      runs[i].push(prof);
    }
  }
  const [a, b] = [medianProfile(runs[0]), medianProfile(runs[1])];
  const d = (f: (p: NoopProfile) => number) => (a && b ? round((f(b) - f(a)) / 1000, 3) : null);
  const ctl = (p: NoopProfile) =>
    p.controller.inventory_ms + p.controller.roles_ms + p.controller.compile_ms + p.controller.probe_scripts_ms + p.controller.parse_decide_ms;
  const cliD = cli.s[0] !== null && cli.s[1] !== null ? round(cli.s[1] - cli.s[0], 3) : null;
  const controllerD = d(ctl);
  const hostD = d((p) => p.host.probe_ms_median);
  // The round trip minus the host's own time: transfer, sshd/sh, the controller reading it.
  const wireD = d((p) => p.wire.probe_round_trip_ms - p.host.probe_ms_max);
  return {
    hosts,
    resources: [small.workload.resources, large.workload.resources],
    repeats: ctx.opts.repeats,
    method:
      "Each profile is a fresh `node dist/bench/profile.js` process calling keel's engine functions " +
      'the way `keel provision` does for a no-op (bench/engine-probe.ts): ' +
      'inventory, roles, compileHost per host, buildProbeScript with the lock snippet, connect all hosts at once, ' +
      'the probe on all hosts at once, parse + decide, release. ' +
      "Host probe = the probe script's wall time on the host (`date +%s%N` around it; median over the hosts). " +
      'Wire = the slowest round trip minus the slowest host time. ' +
      "Rest = the CLI's growth minus controller, host and wire growth (Node start-up and module loading do not grow with resources).",
    profiles: [a, b],
    cli_s: cli.s,
    cli_cpu_s: cli.cpu,
    delta: {
      cli_s: cliD,
      cli_cpu_s: cli.cpu[0] !== null && cli.cpu[1] !== null ? round(cli.cpu[1] - cli.cpu[0], 3) : null,
      controller_s: controllerD,
      host_probe_s: hostD,
      wire_s: wireD,
      rest_s: cliD !== null && controllerD !== null && hostD !== null && wireD !== null ? round(cliD - controllerD - hostD - wireD, 3) : null,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The vault's cost

/** `keel inventory` and a no-op `keel provision` on `host` (converged with ctx.workload). */
export async function vaultPhase(ctx: Ctx, host: BenchHost): Promise<VaultPhase> {
  const log = (l: string) => ctx.log(`vault: ${l}`);
  const runs = ctx.opts.vaultRuns;
  log(`keel inventory, ${runs} runs × 4 set-ups`);
  const inventory = await runVaultBench({ runs, command: 'inventory', log });
  const project = {
    write: (root: string) => writeKeelRole(root, ctx.workload),
    inventoryHosts: [
      `known_hosts: ${JSON.stringify(ctx.pool.knownHostsFile)}`,
      'hosts:',
      `  ${host.name}: {address: 127.0.0.1, port: ${host.port}, user: root, key: ${JSON.stringify(ctx.pool.keyFile)}, groups: [bench]}`,
      'groups:',
      '  bench: {roles: [bench]}',
      '',
    ].join('\n'),
  };
  log(`no-op keel provision (${ctx.workload.resources} resources, 1 host), ${runs} runs × 4 set-ups`);
  const provision = await runVaultBench({ runs, command: 'provision', project, log });
  for (const r of [inventory, provision]) {
    for (const m of r.modes) if (m.failures) ctx.errors.push(`vault ${r.command}, ${m.mode}: ${m.failures} of ${runs} runs failed: ${m.error}`);
  }
  return {
    method:
      `bench/vault.ts: ${runs} runs per set-up, set-ups interleaved (one of each in turn). Each run is the real CLI in a fresh process; ` +
      'wall from spawn to exit, user/system CPU and peak RSS from process.resourceUsage() at exit (a preloaded module). ' +
      'Set-ups: none (no vault), passphrase (scrypt logN 18, KEEL_VAULT_PASSWORD), unlocked (`keel secrets unlock` then no passphrase), ' +
      'identity (vault encrypted to an X25519 identity, KEEL_AGE_IDENTITY). ' +
      `The inventory's variables use two vault values. provision: a no-op on ${host.name}, ` +
      `a systemd target converged with the ${ctx.workload.resources}-resource bench role.`,
    inventory,
    provision,
  };
}

// ---------------------------------------------------------------------------------------------
// Fake endpoints: record a real host, replay it to 100..1000 endpoints

/** Converge `host` (a systemd target) with ctx.workload and record its answer to the probe. */
export async function recordPhase(ctx: Ctx, host: BenchHost): Promise<ProbeRecording> {
  await ctx.keel.writeInventory('record', [host], ctx.pool.keyFile, ctx.pool.knownHostsFile);
  ctx.log(`record: converging ${host.name}, then recording its answer to the lock + probe script`);
  const conv = await ctx.keel.provision('record');
  if (conv.error) throw new Error(`record: converging ${host.name} failed: ${conv.error}`);
  return recordProbe(ctx.keel.dir, 'record');
}

/** How many open files keel may need for n hosts, and the `ulimit -n` to run it under. */
export function nofileFor(n: number, soft: number | null, hard: number | null): number | undefined {
  const need = 2 * n + 256;
  if (soft !== null && soft >= need) return undefined;
  return Math.min(hard ?? 65536, Math.max(65536, need));
}

export async function fakeScalePhase(ctx: Ctx, work: string, keelRoot: string, rec: ProbeRecording, limits: Limits): Promise<FakeScale> {
  const { opts } = ctx;
  const max = opts.scale[opts.scale.length - 1]!;
  const delay = opts.fakeDelayMs ?? Math.round(rec.hostMs);
  const dir = join(work, 'fake');
  await mkdir(dir, { recursive: true });
  ctx.log(`fake endpoints: starting ${max} in ${opts.fakeWorkers} worker processes (probe answered after ${delay} ms)`);
  const fake = await FakeHosts.start({ count: max, workers: opts.fakeWorkers, recording: rec, delayMs: delay, dir });
  activeFakes.add(fake);
  const project = await KeelProject.create(join(work, 'keel-fake'), ctx.workload, keelRoot);
  const rows: FakeScaleRow[] = [];
  try {
    // Containers were just removed (disk and dockerd busy for a while): let that settle first.
    await new Promise((r) => setTimeout(r, 30_000));
    for (const n of opts.scale) {
      const load1AtStart = round(loadavg()[0]!, 2);
      const env = `f${n}`;
      await project.writeInventory(env, fake.hosts.slice(0, n), fake.keyFile, fake.knownHostsFile);
      const nofile = nofileFor(n, limits.nofile_soft, limits.nofile_hard);
      if (nofile) {
        limits.nofile_raised_to = Math.max(limits.nofile_raised_to ?? 0, nofile);
        limits.notes.push(`keel ran under ulimit -n ${nofile} for ${n} fake endpoints (soft limit ${limits.nofile_soft})`);
      }
      const runs: { r: ToolRun; stats: ReturnType<typeof diffStats> }[] = [];
      const errors: string[] = [];
      for (let rep = 0; rep < opts.repeats; rep++) {
        ctx.log(`fake endpoints: no-op on ${n}, repeat ${rep + 1}/${opts.repeats}`);
        const before = await fake.stats();
        const r = await project.provision(env, { nofile, sampleFds: true });
        const after = await fake.stats();
        const delta = diffStats(before, after);
        const why = noopProblems(r, n, before, after);
        if (why.length) {
          errors.push(`repeat ${rep + 1}: ${why.join('; ')}`);
          ctx.errors.push(`fake endpoints, ${n} hosts, repeat ${rep + 1}: ${why.join('; ')}`);
        }
        runs.push({ r, stats: delta });
      }
      const good = runs.filter((x) => !x.r.error);
      const med = (f: (x: (typeof runs)[number]) => number | null | undefined) => {
        const v = good.map(f).filter((x): x is number => typeof x === 'number');
        return median(v);
      };
      const cpu = med((x) => cpuOf(x.r));
      const last = runs[runs.length - 1]!;
      rows.push({
        hosts: n,
        load1_at_start: load1AtStart,
        wall_s: round(med((x) => x.r.seconds)),
        cpu_s: round(cpu),
        cpu_user_s: round(med((x) => x.r.cpuUserS)),
        cpu_sys_s: round(med((x) => x.r.cpuSysS)),
        cpu_ms_per_host: cpu !== null ? round((cpu * 1000) / n, 2) : null,
        peak_rss_mb: round(
          med((x) => x.r.peakRssMb),
          1,
        ),
        peak_fds: med((x) => x.r.peakFds),
        round_trips_per_host: median(good.flatMap((x) => x.r.roundTrips ?? [])),
        ok: last.r.changed === 0 && !last.r.error ? n : 0,
        changed: last.r.changed,
        failed: last.r.failed,
        unreachable: last.r.unreachable,
        endpoint: {
          connections: last.stats.connections,
          execs: last.stats.execs,
          probes: last.stats.probes,
          releases: last.stats.releases,
          unknown: last.stats.unknown,
          auth_failures: last.stats.authFailures,
          peak_channels: last.stats.peakChannels,
        },
        runs: runs.map((x) => round(x.r.seconds)!),
        errors,
      });
    }
    const final = await fake.stats();
    return {
      method:
        `${max} endpoints: ssh2's Server on 127.0.0.1, one port each, served by ${opts.fakeWorkers} worker processes (bench/fake-endpoint.ts), ` +
        'not the keel process measured. ' +
        'Each does the SSH handshake (curve25519 key exchange, Ed25519 host key, public key login) and accepts one exec `sh -s`; ' +
        'it answers the framed lock + probe script with the output recorded from a real converged systemd target (nonces substituted) ' +
        `after ${delay} ms (that host's own time for the probe), and the release script with nothing, exit 0. ` +
        'keel is the real CLI (`node bin/keel.js provision fN --output json`, default forks = all hosts) ' +
        'under GNU time (wall, user+sys CPU, peak RSS); its open files are sampled from /proc every 100 ms. ' +
        `Median of ${opts.repeats} run(s); started 30 s after the containers of the earlier phases were removed.`,
      not_costed:
        'What the fake endpoints do not cost, and real hosts would (on their side, or on this shared machine if they were local containers): ' +
        'an sshd fork, privilege separation and PAM per login, ' +
        "a login shell and `sh` running the probe (stat, sha256sum, dpkg-query, systemctl spawns), Docker's userland proxy per published port, " +
        "and the hosts' own variance. " +
        "The controller's side is real: every byte keel sends and reads is what it would send to and read from a converged host, " +
        'and the per-connection crypto is the same.',
      recording: { source: rec.source, resources: rec.resources, host_ms: rec.hostMs, stdout_bytes: Buffer.byteLength(rec.stdout) },
      delay_ms: delay,
      workers: opts.fakeWorkers,
      workers_rss_mb: final.workersRssMb,
      rows,
    };
  } finally {
    await fake.stop();
    activeFakes.delete(fake);
  }
}

/** The fake endpoints running now, for the signal handler. */
export const activeFakes = new Set<FakeHosts>();

type EndpointCounts = Awaited<ReturnType<FakeHosts['stats']>>;

/** Why a no-op on `n` fake endpoints was not one (none: it was): keel's own report, and the
 *  endpoints' counters from `before` to `after` (one probe and one release per host, nothing
 *  else, no failed login, no endpoint error). */
export function noopProblems(r: ToolRun, n: number, before: EndpointCounts, after: EndpointCounts): string[] {
  const delta = diffStats(before, after);
  const why: string[] = [];
  if (r.error) why.push(r.error);
  if (r.changed || r.failed || r.unreachable) why.push(`changed ${r.changed}, failed ${r.failed}, unreachable ${r.unreachable}`);
  if (delta.probes !== n || delta.releases !== n) why.push(`the endpoints answered ${delta.probes} probes and ${delta.releases} releases for ${n} hosts`);
  if (delta.unknown || delta.authFailures) why.push(`${delta.unknown} unexpected scripts, ${delta.authFailures} failed logins`);
  if (after.errors.length > before.errors.length) why.push(`endpoint errors: ${after.errors.slice(before.errors.length, before.errors.length + 3).join('; ')}`);
  return why;
}

function diffStats(a: EndpointCounts, b: EndpointCounts) {
  return {
    connections: b.connections - a.connections,
    execs: b.execs - a.execs,
    probes: b.probes - a.probes,
    releases: b.releases - a.releases,
    unknown: b.unknown - a.unknown,
    authFailures: b.authFailures - a.authFailures,
    // The peak is per worker since it started: not a difference.
    peakChannels: b.peakChannels,
  };
}

// ---------------------------------------------------------------------------------------------
// The controller's CPU per host

export function controllerCpu(scenarios: Scenario[], fake: FakeScale | null): ControllerCpu | null {
  const noops = scenarios.filter((s) => s.name === 'noop' && s.keel_cpu_s != null);
  const rows: ControllerCpu['rows'] = [
    ...noops.map((s) => ({
      source: (s.endpoints === 'light' ? 'light containers' : 'containers') as 'containers' | 'light containers',
      hosts: s.hosts,
      resources: s.resources,
      wall_s: s.keel_s,
      cpu_s: s.keel_cpu_s!,
      cpu_ms_per_host: round((s.keel_cpu_s! * 1000) / s.hosts, 2),
      peak_rss_mb: s.keel_peak_rss_mb,
    })),
    ...(fake?.rows ?? []).map((r) => ({
      source: 'fake endpoints' as const,
      hosts: r.hosts,
      resources: fake!.recording.resources,
      wall_s: r.wall_s,
      cpu_s: r.cpu_s,
      cpu_ms_per_host: r.cpu_ms_per_host,
      peak_rss_mb: r.peak_rss_mb,
    })),
  ];
  if (!rows.length) return null;
  const slope = (a?: { hosts: number; cpu_s: number | null }, b?: { hosts: number; cpu_s: number | null }) =>
    a && b && a.cpu_s !== null && b.cpu_s !== null && b.hosts > a.hosts ? round(((b.cpu_s - a.cpu_s) * 1000) / (b.hosts - a.hosts), 2) : null;
  const c = rows.filter((r) => r.source !== 'fake endpoints');
  const f = rows.filter((r) => r.source === 'fake endpoints');
  return {
    method:
      'CPU = user + system seconds of the keel process (GNU time %U + %S, children included: keel spawns none in a provision), ' +
      'no-op at the given resources, median of the repeats. ' +
      "The targets' CPU is not in it (they are other processes: containers, or the fake endpoints' workers). " +
      'Per host = CPU / hosts (fixed costs such as Node start-up spread over the hosts); ' +
      'marginal = the difference in CPU between two host counts divided by the difference in hosts (what one more host costs).',
    rows,
    marginal_ms_per_host_containers: slope(c.find((r) => r.hosts === 10) ?? c[0], c.find((r) => r.hosts === 100) ?? c[c.length - 1]),
    marginal_ms_per_host_fake: slope(f[0], f[f.length - 1]),
  };
}

// ---------------------------------------------------------------------------------------------
// Limits and load

const INOTIFY = '/proc/sys/fs/inotify/max_user_instances';

function readNumber(file: string): number | null {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
}

/** `ulimit -n` (soft, hard) as a child process gets it; inotify instances, raised to `inotifyWanted` as root. */
export function checkLimits(inotifyWanted: number | null): Limits {
  const lim = (flag: string) => {
    try {
      const v = execFileSync('/bin/sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
      return v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v);
    } catch {
      return null;
    }
  };
  const before = readNumber(INOTIFY);
  const notes: string[] = [];
  if (inotifyWanted !== null && before !== null && before < inotifyWanted) {
    try {
      writeFileSync(INOTIFY, `${inotifyWanted}\n`);
      notes.push(
        `fs.inotify.max_user_instances raised from ${before} to ${inotifyWanted} (sysctl -w; machine-wide, left raised for the other tests sharing it)`,
      );
    } catch (err) {
      notes.push(`could not raise fs.inotify.max_user_instances from ${before}: ${(err as Error).message}`);
    }
  }
  return {
    nofile_soft: lim('-Sn'),
    nofile_hard: lim('-Hn'),
    nofile_raised_to: null,
    inotify_max_user_instances_before: before,
    inotify_max_user_instances_after: readNumber(INOTIFY),
    notes,
  };
}

export class LoadSampler {
  private samples: number[] = [loadavg()[0]!];
  private timer = setInterval(() => this.samples.push(loadavg()[0]!), 15_000);
  private readonly othersAtStart: number | null;

  constructor(private readonly ownLabel: string) {
    this.timer.unref();
    this.othersAtStart = this.others();
  }

  /** Running containers that are not this bench's (other people's tests on the machine). */
  private others(): number | null {
    try {
      const all = execFileSync('docker', ['ps', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
      const own = execFileSync('docker', ['ps', '-q', '--filter', `label=${this.ownLabel}`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean).length;
      return all - own;
    } catch {
      return null;
    }
  }

  summary(): LoadSummary {
    clearInterval(this.timer);
    const s = [...this.samples].sort((a, b) => a - b);
    return {
      load1: { min: round(s[0]!, 2)!, median: round(median(s), 2)!, max: round(s[s.length - 1]!, 2)!, samples: s.length },
      other_containers_at_start: this.othersAtStart,
      other_containers_at_end: this.others(),
    };
  }
}
