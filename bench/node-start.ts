// NODE_EXTRA_CA_CERTS and a Node start. When it is set, Node 20 builds its whole TLS root store
// (about 140 certificates) while it starts, before any of keel's code runs: it adds some 40 ms of
// CPU to every `node` process on this machine, which sets it for its registry's proxy. A user's
// machine usually does not set it, and keel opens no TLS connection in the runs the bench times
// (only deploy_notify's webhooks do). So the bench measures that cost, records it, and times keel
// (both checkouts alike) without the variable, unless --keep-node-extra-ca-certs. Ansible does
// not read it.
import { spawnSync } from 'node:child_process';
import { median, round } from './report.js';

const EXTRA_CA_VAR = 'NODE_EXTRA_CA_CERTS';

export interface NodeStart {
  /** The variable's value in the bench's environment (a path), or null when unset. */
  extra_ca_certs: string | null;
  /** Whether keel's runs in this bench had it: false when the bench cleared it. */
  kept_for_keel: boolean;
  /** `node -e 0`, wall ms, medians of alternated runs: with the variable as set, and without. */
  node_e0_ms: { with: number; without: number; runs: number } | null;
}

/** Time `node -e 0` with the variable and without (alternated), then clear it from this
 *  process's environment (every child inherits that) unless `keep`. */
export function settleNodeStart(keep: boolean, runs = 15): NodeStart {
  const value = process.env[EXTRA_CA_VAR] ?? null;
  if (value === null) return { extra_ca_certs: null, kept_for_keel: true, node_e0_ms: null };
  const { [EXTRA_CA_VAR]: _dropped, ...clean } = process.env;
  const withVar = { env: process.env, ms: [] as number[] };
  const without = { env: clean, ms: [] as number[] };
  for (let i = 0; i < runs; i++) {
    for (const side of i % 2 ? [without, withVar] : [withVar, without]) {
      const t = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0'], { env: side.env, stdio: 'ignore' });
      side.ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  if (!keep) delete process.env[EXTRA_CA_VAR];
  const ms = (side: { ms: number[] }) => round(median(side.ms), 1)!;
  return { extra_ca_certs: value, kept_for_keel: keep, node_e0_ms: { with: ms(withVar), without: ms(without), runs } };
}

/** One line for the results' notes. */
export function nodeStartNote(n: NodeStart): string | null {
  if (n.extra_ca_certs === null || !n.node_e0_ms) return null;
  const { with: w, without, runs } = n.node_e0_ms;
  return (
    `This machine sets ${EXTRA_CA_VAR} (${n.extra_ca_certs}); with it, Node 20 builds its TLS root store at every start: ` +
    `\`node -e 0\` took ${w} ms with it and ${without} ms without (medians of ${runs} alternated runs each). ` +
    (n.kept_for_keel
      ? `keel ran with it (--keep-node-extra-ca-certs): its times include that.`
      : `keel (and the baseline) ran without it, as on a machine that does not set it; keel opens no TLS connection in these runs.`)
  );
}
