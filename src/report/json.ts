// What `--output json` prints: the documented shapes (README, "--output json"; docs/deploy.md).
// Scripts parse them, so a field is only ever added, never renamed or dropped.
import type { DeployReport, StepRecord } from '../deploy/run.js';
import type { Delivery } from '../deploy/notify.js';
import type { ResourceResult, ResourceStatus, RunReport } from '../engine/results.js';
import type { HostFacts } from '../engine/facts.js';

/** `keel provision` and `keel plan`. */
export interface RunJson {
  env: string;
  check: boolean;
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  durationMs: number;
  hosts: HostJson[];
}

export interface HostJson {
  name: string;
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  error: string | null;
  roundTrips: number;
  durationMs: number;
  notes?: string[];
  /** What the probe read: distribution, release, codename, architecture, service_manager. */
  facts?: HostFacts;
  resources: ResourceJson[];
}

export interface ResourceJson {
  id: string;
  status: ResourceStatus;
  reason: string;
  uncertain?: true;
  output?: string;
  code?: number;
}

export function runJson(report: RunReport): RunJson {
  // Hosts that share a result (results.ts okResult) share its JSON, and writeJson writes its text once.
  const shared = new Map<ResourceResult, ResourceJson>();
  const resourceJson = (r: ResourceResult) => shared.get(r) ?? shared.set(r, toResourceJson(r)).get(r)!;
  return {
    env: report.env,
    check: report.check,
    ok: report.ok,
    changed: report.changed,
    failed: report.failed,
    unreachable: report.unreachable,
    durationMs: report.durationMs,
    hosts: report.hosts.map((h) => ({
      name: h.name,
      ok: h.ok,
      changed: h.changed,
      failed: h.failed,
      unreachable: h.unreachable,
      error: h.error ?? null,
      roundTrips: h.roundTrips,
      durationMs: h.durationMs,
      ...(h.notes?.length ? { notes: h.notes } : {}),
      ...(h.facts && { facts: h.facts }),
      resources: h.resources.map(resourceJson),
    })),
  };
}

function toResourceJson(r: ResourceResult): ResourceJson {
  return {
    id: r.id,
    status: r.status,
    reason: r.reason,
    ...(r.uncertain ? { uncertain: true as const } : {}),
    ...(r.output ? { output: r.output, code: r.code } : {}),
  };
}

/** `keel deploy`. */
export interface DeployJson {
  env: string;
  release: string;
  sha: string;
  branch: string;
  status: DeployReport['status'];
  error: string | null;
  dump: { host: string; path: string } | null;
  rolledBack: boolean;
  /** The migration applied something (the dump then matters: a restore would undo it). */
  migrated: boolean;
  durationMs: number;
  /** The code shipped: its size and sha256 (the same commit and outputs give the same). */
  archive: { bytes: number; sha256: string } | null;
  /** deploy_local_build: its steps and the outputs added to the archive. */
  localBuild: { steps: DeployStepJson[]; outputs: { path: string; files: number; bytes: number }[] } | null;
  /** deploy_notify: each delivery, ok or not (a failed one changes nothing else). */
  notifications: Delivery[];
  /** A rolling deploy's batches (deploy_serial), in order; null: every host at once. */
  batches: string[][] | null;
  hosts: DeployHostJson[];
}

export interface DeployHostJson {
  name: string;
  previous: string | null;
  /** null: no release (or unknown, then `unknown` is true). */
  live: string | null;
  /** The host could not be reached after its release may have changed: keel releases tells. */
  unknown?: true;
  steps: DeployStepJson[];
}

export interface DeployStepJson {
  phase: string;
  name: string;
  status: 'ok' | 'failed' | 'not run';
  durationMs: number | null;
  code?: number;
  output?: string;
}

export function deployJson(r: DeployReport, notifications: Delivery[] = []): DeployJson {
  const step = (s: StepRecord): DeployStepJson => ({
    phase: s.phase,
    name: s.name,
    status: s.status,
    durationMs: s.durationMs ?? null,
    ...(s.code !== undefined ? { code: s.code } : {}),
    ...(s.output ? { output: s.output } : {}),
  });
  return {
    env: r.env,
    release: r.release,
    sha: r.sha,
    branch: r.branch,
    status: r.status,
    error: r.error,
    dump: r.dump,
    rolledBack: r.rolledBack,
    migrated: r.migrated,
    durationMs: r.durationMs,
    archive: r.archive,
    localBuild: r.localBuild ? { steps: r.localBuild.steps.map(step), outputs: r.localBuild.outputs } : null,
    notifications,
    batches: r.batches,
    hosts: r.hosts.map((h) => ({
      name: h.name,
      previous: h.previous || null,
      live: h.live || null,
      ...(h.live === null ? { unknown: true as const } : {}),
      steps: h.steps.map(step),
    })),
  };
}
