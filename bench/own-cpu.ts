// The 200 → 400 scaling figure on hosts that each have their own CPU.
//
// On the systemd targets, the ten hosts' probes (bash, stat, sha256sum, dpkg-query over every
// resource) run on the same two cores as keel: twice the resources there is ten hosts' extra
// work queued on the controller's cores, which a fleet of real servers does each on its own.
// Here the same two projects run against fake endpoints (fake-endpoint.ts) that answer each
// probe with what one of those converged targets answered to it, after that target's own
// median time for it (recorded alone, both sizes in turn). keel's side is the real CLI: the
// same scripts sent, the same output read, parsed and decided; the host's extra work for 2R
// is in the figure as the recorded time, not as CPU taken from the controller.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeHosts } from './fake-hosts.js';
import { activeFakes, noopProblems } from './phases.js';
import { pairFigures, runPairs, type PairFigures } from './pairs.js';
import { recordProbe } from './record.js';
import type { ProbeRecording } from './replay.js';
import { median, round } from './report.js';
import type { KeelProject, ToolRun } from './runners.js';
import type { BenchHost, TargetPool } from './targets.js';

/** What the container scaling leaves for this figure: its projects and one host's answers. */
export interface OwnCpuInput {
  hosts: number;
  projects: [KeelProject, KeelProject];
  recordings: [ProbeRecording, ProbeRecording];
  /** How many probes of each size the recorded times are medians of. */
  recorded: number;
}

export interface OwnCpuScaling extends PairFigures {
  method: string;
  hosts: number;
  /** The recorded host's median probe time at each size (ms): each endpoint's delay. */
  host_probe_ms: [number, number];
  /** How many probes of each size those medians are of. */
  recorded: number;
}

const ENV = 'own';

/** `host`'s answers to both projects' probes, `times` each, in turn; hostMs is the median. */
export async function recordBoth(
  projects: [KeelProject, KeelProject],
  host: BenchHost,
  pool: TargetPool,
  times: number,
  log: (s: string) => void,
): Promise<[ProbeRecording, ProbeRecording]> {
  for (const p of projects) await p.writeInventory('record-own', [host], pool.keyFile, pool.knownHostsFile);
  const got: [ProbeRecording[], ProbeRecording[]] = [[], []];
  for (let t = 0; t < times; t++) {
    for (const i of [0, 1] as const) {
      log(`scaling: recording ${host.name}'s answer to the probe of ${projects[i].workload.resources} resources, ${t + 1}/${times}`);
      got[i].push(await recordProbe(projects[i].dir, 'record-own', 1));
    }
  }
  const pick = (rs: ProbeRecording[]): ProbeRecording => ({ ...rs[0]!, hostMs: round(median(rs.map((r) => r.hostMs)), 1)! });
  return [pick(got[0]), pick(got[1])];
}

/** The pairs against `input.hosts` fake endpoints per size. The containers must be gone. */
export async function ownCpuScaling(
  input: OwnCpuInput,
  o: { work: string; pairs: number; workers: number; log: (s: string) => void; onError: (m: string) => void },
): Promise<OwnCpuScaling> {
  const { hosts: n, projects, recordings } = input;
  const fakes: FakeHosts[] = [];
  try {
    for (const i of [0, 1] as const) {
      const rec = recordings[i];
      o.log(`scaling on fake endpoints: ${n} answering the probe of ${projects[i].workload.resources} resources after ${rec.hostMs} ms`);
      const dir = join(o.work, `own-${i}`);
      await mkdir(dir, { recursive: true });
      const fake = await FakeHosts.start({ count: n, workers: o.workers, recording: rec, delayMs: rec.hostMs, dir });
      fakes.push(fake);
      activeFakes.add(fake);
      await projects[i].writeInventory(ENV, fake.hosts, fake.keyFile, fake.knownHostsFile);
    }
    // Every run must have been the no-op's protocol: one probe and one release per host.
    let before: Awaited<ReturnType<FakeHosts['stats']>> | null = null;
    const beforeRun = async (i: 0 | 1): Promise<void> => {
      before = await fakes[i]!.stats();
    };
    const check = async (i: 0 | 1, r: ToolRun): Promise<string | null> => {
      const why = noopProblems(r, n, before!, await fakes[i]!.stats());
      return why.length ? why.join('; ') : null;
    };
    const series = await runPairs({
      projects,
      beforeRun,
      env: ENV,
      pairs: o.pairs,
      phasesFile: join(o.work, 'own-phases.json'),
      log: o.log,
      check,
      onError: o.onError,
    });
    return {
      method:
        `The same two projects as the figure on systemd targets, against ${n} fake endpoints per size (bench/fake-endpoint.ts, ` +
        `${o.workers} worker process(es) each, started after the containers were removed). Each endpoint answers the lock + probe ` +
        `with what ${recordings[0].source.split(' ')[0]} answered to that size's probe, after that host's median time for it ` +
        `(${recordings[0].hostMs} ms and ${recordings[1].hostMs} ms, medians of ${input.recorded} recordings per size taken in turn ` +
        "with the controller idle), as servers that each have their own CPU would. keel is the real CLI; the hosts' extra work " +
        "for the larger role is in the figure as time, not as CPU taken from the controller's two cores. " +
        "Not in it: sshd's fork, PAM and the login shell on the host, and any network: the same at both sizes, they make a real " +
        "server's no-op longer, so the same growth is a larger share of this one.",
      hosts: n,
      host_probe_ms: [recordings[0].hostMs, recordings[1].hostMs],
      recorded: input.recorded,
      ...pairFigures(series),
    };
  } finally {
    for (const f of fakes) {
      await f.stop();
      activeFakes.delete(f);
    }
  }
}
