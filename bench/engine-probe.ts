// keel's engine called from bench code (not through the CLI), to take a no-op run apart:
// inventory, roles, compile, probe script, connect, the probe round trip (and its time on the
// host), parse and decide, release. Used by bench/profile.ts (the 200 → 400 breakdown) and
// bench/record.ts (a converged host's probe output, replayed by the fake endpoints).
//
// The scripts are keel's own (buildProbeScript with acquireSnippet, releaseScript), sent over
// keel's own session (one `sh -s` per host, framed). To time the probe on the host, two lines
// are added around it: `date +%s%N` before and after, printed on stderr after the probe's own
// output (two extra spawns on the host, ~1-3 ms).
import { performance } from 'node:perf_hooks';
import { SectionCache } from '../src/engine/compile-reuse.js';
import { compileHost, roleInstancesOf } from '../src/engine/compile.js';
import { sshConnector } from '../src/engine/connector.js';
import { acquireSnippet, newLockOwner, parseLockReport, releaseScript, type LockOwner } from '../src/engine/lock.js';
import type { PreparedRun } from '../src/engine/pipeline.js';
import type { HostPlan } from '../src/engine/plan.js';
import { RoleLibrary } from '../src/engine/roles.js';
import { activeResources, buildProbeScript, parseProbe } from '../src/engine/script.js';
import { newNonce } from '../src/engine/script-parts.js';
import { readExtraVars } from '../src/inventory/extra-vars.js';
import { loadInventory, selectHosts } from '../src/inventory/load.js';
import type { HostSession } from '../src/ssh/types.js';

const TIME_MARK = '@@keel-bench-time';

export interface Prepared {
  prepared: PreparedRun;
  /** ms for each part, in order. */
  timings: { inventory_ms: number; roles_ms: number; compile_ms: number[] };
}

/** What prepareRun does for a project without a vault (src/engine/pipeline.ts), each part timed. */
export async function prepareTimed(root: string, env: string): Promise<Prepared> {
  let t = performance.now();
  const library = RoleLibrary.forProject(root);
  const inventory = await loadInventory({
    root,
    env,
    extraVars: readExtraVars([], root),
    isKnownRole: (n) => library.has(n),
    knownRoles: library.names(),
  });
  const hosts = selectHosts(inventory);
  const inventory_ms = performance.now() - t;
  t = performance.now();
  for (const r of new Set(hosts.flatMap((h) => h.roles))) library.get(r);
  const roles_ms = performance.now() - t;
  const compile_ms: number[] = [];
  const plans: HostPlan[] = [];
  // As prepareRun: a host that reads the same as an earlier one takes its resources.
  const sections = new SectionCache(hosts.map(roleInstancesOf));
  for (const host of hosts) {
    t = performance.now();
    plans.push(compileHost(host, library, { env, secrets: {}, root, sections }));
    compile_ms.push(performance.now() - t);
  }
  return { prepared: { inventory, library, hosts, plans, secrets: {} }, timings: { inventory_ms, roles_ms, compile_ms } };
}

export interface ProbeScript {
  plan: HostPlan;
  nonce: string;
  script: string;
}

/** The run's first script for a host: take the lock and probe, as src/engine/host-run.ts builds it. */
export function probeScript(plan: HostPlan, owner: LockOwner): ProbeScript {
  const nonce = newNonce();
  const active = activeResources(plan.resources);
  return { plan, nonce, script: buildProbeScript(active, nonce, { wantDiff: false }, acquireSnippet(nonce, owner)) };
}

export function benchOwner(): LockOwner {
  return newLockOwner('bench probe');
}

export async function connectAll(prepared: PreparedRun): Promise<HostSession[]> {
  const connect = sshConnector(prepared, {});
  return Promise.all(prepared.plans.map((p) => connect(p)));
}

export interface ProbeRun {
  stdout: string;
  stderr: string;
  code: number | null;
  /** The script's wall time on the host. */
  hostMs: number;
  /** From writing the script to reading its end marker, on the controller. */
  roundTripMs: number;
  /** ms to parse the output and decide every resource. */
  decideMs: number;
  /** Resources that did not decide `ok` (a converged host has none). */
  notOk: string[];
  lock: string;
  /** The whole framed script as sent (bytes), and the output (bytes). */
  scriptBytes: number;
  outputBytes: number;
}

/** Run a probe script over `session`, timed on the host, then parse and decide as keel does. */
export async function runProbe(session: HostSession, p: ProbeScript): Promise<ProbeRun> {
  const timed =
    `keel_bench_t0=$(date +%s%N)\n${p.script}keel_bench_t1=$(date +%s%N)\n` + `printf '\\n%s %s %s\\n' '${TIME_MARK}' "$keel_bench_t0" "$keel_bench_t1" >&2\n`;
  const t0 = performance.now();
  const out = await session.runScript(timed, { timeoutMs: 300_000 });
  const roundTripMs = performance.now() - t0;
  const m = new RegExp(`\\n${TIME_MARK} (\\d+) (\\d+)\\n`).exec(out.stderr);
  const hostMs = m ? Number(BigInt(m[2]!) - BigInt(m[1]!)) / 1e6 : NaN;
  const stderr = m ? out.stderr.slice(0, m.index) + out.stderr.slice(m.index + m[0].length) : out.stderr;
  const t1 = performance.now();
  const active = activeResources(p.plan.resources);
  const probe = parseProbe(out.stdout, p.nonce, active);
  const notOk: string[] = [];
  for (const r of active) {
    try {
      const d = r.type.decide(r.params, probe.facts.get(r.index) ?? {}, { wantDiff: false });
      if (d.kind !== 'ok') notOk.push(`${r.id}: ${d.reason}`);
    } catch (err) {
      notOk.push(`${r.id}: ${(err as Error).message}`);
    }
  }
  if (!probe.complete) notOk.push('the probe output is incomplete');
  const decideMs = performance.now() - t1;
  const lock = parseLockReport(out.stdout, p.nonce)?.kind ?? 'none';
  return {
    stdout: out.stdout,
    stderr,
    code: out.code,
    hostMs,
    roundTripMs,
    decideMs,
    notOk,
    lock,
    scriptBytes: Buffer.byteLength(timed),
    outputBytes: Buffer.byteLength(out.stdout),
  };
}

export async function release(session: HostSession, owner: LockOwner): Promise<number> {
  const t0 = performance.now();
  const r = await session.runScript(releaseScript(owner.run_id), { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${session.host}: the release script failed (exit ${r.code}): ${r.stderr.slice(-300)}`);
  return performance.now() - t0;
}
