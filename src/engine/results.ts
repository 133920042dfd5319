import type { ContentDiff } from '../resources/types.js';
import type { HostFacts } from './facts.js';

export type ResourceStatus = 'ok' | 'changed' | 'failed' | 'skipped';

export interface ResourceResult {
  id: string;
  status: ResourceStatus;
  reason: string;
  /** In --check: the change depends on an earlier change, so it may not happen as shown. */
  uncertain?: boolean;
  diff?: ContentDiff;
  /** Last lines of a failed command's output. */
  output?: string;
  code?: number;
}

/** `id` is ok: the result of an ok decision, one object per decision. A decision made once for
 *  many hosts (decide.ts) gives them one result, and the run log writes it as one text. Results
 *  are not changed after they are made. */
export function okResult(id: string, decision: { reason: string }): ResourceResult {
  const known = okResults.get(decision);
  if (known?.id === id) return known;
  const res: ResourceResult = { id, status: 'ok', reason: decision.reason };
  okResults.set(decision, res);
  return res;
}

const okResults = new WeakMap<object, ResourceResult>();

/** What a host's apply script is doing, as it happens: for live progress, not part of a result.
 *  `id` is a resource's id or `handler/<id>`; `done` counts the host's resources with a result
 *  so far, of `total`. */
export type StepActivity =
  | { state: 'running' | 'ended'; id: string; done: number; total: number }
  /** A line the running step wrote (streamed with -v). */
  | { state: 'output'; id: string; line: string };

export interface HostResult {
  name: string;
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  resources: ResourceResult[];
  /** Why the host failed as a whole (unreachable, probe failed...). */
  error?: string;
  /** Scripts run on this host (SSH round trips). */
  roundTrips: number;
  /** Things worth knowing that are not failures (another run holds the host's lock...). */
  notes?: string[];
  /** What the host is, as its probe read it. */
  facts?: HostFacts;
  durationMs: number;
}

export interface RunReport {
  env: string;
  check: boolean;
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  hosts: HostResult[];
  durationMs: number;
}

export function tally(host: Omit<HostResult, 'ok' | 'changed' | 'failed'>): HostResult {
  const count = (s: ResourceStatus) => host.resources.filter((r) => r.status === s).length;
  return { ...host, ok: count('ok'), changed: count('changed'), failed: count('failed') };
}

export function summarize(env: string, check: boolean, hosts: HostResult[], durationMs: number): RunReport {
  const sum = (k: 'ok' | 'changed' | 'failed' | 'unreachable') => hosts.reduce((n, h) => n + h[k], 0);
  return { env, check, ok: sum('ok'), changed: sum('changed'), failed: sum('failed'), unreachable: sum('unreachable'), hosts, durationMs };
}
