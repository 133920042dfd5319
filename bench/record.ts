// Record what a real converged host answers to a no-op run's first script (lock + probe), for
// the fake endpoints to replay (bench/replay.ts). keel's own script over keel's own session to
// a systemd target the bench converged; the host must decide `ok` for every resource (else it
// is not converged and the recording is refused). Run `times` times (lock taken and released
// each time): the first output is kept, the host-side time is the median.
import { benchOwner, connectAll, prepareTimed, probeScript, release, runProbe } from './engine-probe.js';
import type { ProbeRecording } from './replay.js';

export async function recordProbe(root: string, env: string, times = 3): Promise<ProbeRecording> {
  const { prepared } = await prepareTimed(root, env);
  if (prepared.plans.length !== 1) throw new Error(`record: inventory ${env} must have exactly one host (has ${prepared.plans.length})`);
  const plan = prepared.plans[0]!;
  const [session] = await connectAll(prepared);
  try {
    let first: ProbeRecording | undefined;
    const hostMs: number[] = [];
    for (let i = 0; i < times; i++) {
      const owner = benchOwner();
      const p = probeScript(plan, owner);
      const r = await runProbe(session!, p);
      await release(session!, owner);
      if (r.lock !== 'acquired') throw new Error(`record: the lock of ${plan.host.name} was not free (${r.lock})`);
      if (r.code !== 0 || r.notOk.length) throw new Error(`record: ${plan.host.name} is not converged (exit ${r.code}): ${r.notOk.slice(0, 5).join('; ')}`);
      hostMs.push(r.hostMs);
      first ??= {
        nonce: p.nonce,
        stdout: r.stdout,
        stderr: r.stderr,
        code: r.code,
        resources: plan.resources.filter((x) => !x.skipped).length,
        hostMs: 0,
        source: `${plan.host.name} (${plan.host.connection.address}:${plan.host.connection.port}), ${new Date().toISOString()}`,
      };
    }
    hostMs.sort((a, b) => a - b);
    return { ...first!, hostMs: Math.round(hostMs[hostMs.length >> 1]! * 10) / 10 };
  } finally {
    await session!.close();
  }
}
