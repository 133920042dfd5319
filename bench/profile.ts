// A no-op run taken apart, controller side vs host side: what `keel provision` does for a
// converged project, step by step through keel's engine functions (bench/engine-probe.ts), each
// step timed. Run in a fresh process per measurement, as the CLI is (cold JIT, cold caches):
//
//   node dist/bench/profile.js --root DIR --env ENV     # one NoopProfile as JSON on stdout
//
// bench/main.ts runs it for the 200 → 400 resources breakdown (its `breakdown` result).
// Controller parts: inventory, roles, compile (per host), probe scripts, parse + decide, and
// the process's own CPU for those. Host part: each probe's wall time on the host (all hosts
// probed at once, as in a run). Wire: connect, and the probe round trip as the controller sees
// it (from sending the scripts to the last end marker).
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchOwner, connectAll, prepareTimed, probeScript, release, runProbe } from './engine-probe.js';

export interface NoopProfile {
  hosts: number;
  resources: number;
  /** Node start-up and loading keel's engine modules (process.uptime() when the profile starts). */
  startup_ms: number;
  controller: {
    inventory_ms: number;
    roles_ms: number;
    compile_ms: number;
    compile_ms_per_host: number;
    probe_scripts_ms: number;
    parse_decide_ms: number;
    parse_decide_ms_per_host: number;
    /** user+sys CPU of this process during the controller parts above. */
    cpu_ms: number;
  };
  wire: {
    connect_ms: number;
    probe_round_trip_ms: number;
    release_ms: number;
    script_bytes_per_host: number;
    output_bytes_per_host: number;
  };
  host: {
    probe_ms_median: number;
    probe_ms_max: number;
  };
  /** Resources that did not decide ok (a converged project has none). */
  not_ok: string[];
}

export async function profileNoop(root: string, env: string): Promise<NoopProfile> {
  const startup_ms = process.uptime() * 1000;
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let cpuMs = 0;
  const c0 = cpu();
  const { prepared, timings } = await prepareTimed(root, env);
  const owner = benchOwner();
  let t = performance.now();
  const scripts = prepared.plans.map((p) => probeScript(p, owner));
  const probe_scripts_ms = performance.now() - t;
  cpuMs += cpu() - c0;

  t = performance.now();
  const sessions = await connectAll(prepared);
  const connect_ms = performance.now() - t;
  try {
    t = performance.now();
    const runs = await Promise.all(sessions.map((s, i) => runProbe(s, scripts[i]!)));
    const probe_round_trip_ms = performance.now() - t;
    // runProbe parsed and decided as each answer came (single-threaded: its wall time is CPU).
    const parse_decide_ms = runs.reduce((a, r) => a + r.decideMs, 0);
    t = performance.now();
    await Promise.all(sessions.map((s) => release(s, owner)));
    const release_ms = performance.now() - t;
    const n = prepared.plans.length;
    const compile = timings.compile_ms.reduce((a, b) => a + b, 0);
    const host = runs.map((r) => r.hostMs).sort((a, b) => a - b);
    cpuMs += parse_decide_ms;
    return {
      hosts: n,
      resources: prepared.plans[0]?.resources.length ?? 0,
      startup_ms: r1(startup_ms),
      controller: {
        inventory_ms: r1(timings.inventory_ms),
        roles_ms: r1(timings.roles_ms),
        compile_ms: r1(compile),
        compile_ms_per_host: r1(compile / n),
        probe_scripts_ms: r1(probe_scripts_ms),
        parse_decide_ms: r1(parse_decide_ms),
        parse_decide_ms_per_host: r1(parse_decide_ms / n),
        cpu_ms: r1(cpuMs),
      },
      wire: {
        connect_ms: r1(connect_ms),
        probe_round_trip_ms: r1(probe_round_trip_ms),
        release_ms: r1(release_ms),
        script_bytes_per_host: Math.round(runs.reduce((a, r) => a + r.scriptBytes, 0) / n),
        output_bytes_per_host: Math.round(runs.reduce((a, r) => a + r.outputBytes, 0) / n),
      },
      host: { probe_ms_median: r1(host[host.length >> 1]!), probe_ms_max: r1(host[host.length - 1]!) },
      not_ok: runs.flatMap((r, i) => r.notOk.map((x) => `${prepared.plans[i]!.host.name} ${x}`)).slice(0, 10),
    };
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}

function r1(x: number): number {
  return Math.round(x * 10) / 10;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(flag);
    const v = i >= 0 ? args[i + 1] : undefined;
    if (!v) throw new Error(`usage: node dist/bench/profile.js --root DIR --env ENV (missing ${flag})`);
    return v;
  };
  try {
    process.stdout.write(JSON.stringify(await profileNoop(get('--root'), get('--env'))) + '\n');
  } catch (err) {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
