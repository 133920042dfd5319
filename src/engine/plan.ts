// What the engine works on: a host's resources in order, with rendered params.
import type { SourceLocation } from '../errors.js';
import type { Host, Vars } from '../inventory/types.js';
import type { ResourceType } from '../resources/types.js';
import type { HostFacts } from './facts.js';

export interface PlannedResource {
  index: number;
  /** Stable, unique per host: `nginx/template:/etc/nginx/sites-available/app`. */
  id: string;
  role: string;
  /** What the role called it (`template` stays `template` though it applies as a file). */
  typeName: string;
  type: ResourceType<any>;
  params: any;
  /** Fully qualified handler ids (`role:handler`). */
  notify: string[];
  location: SourceLocation;
  /** Set when `when:` was false: the resource is reported as skipped, never probed. */
  skipped?: string;
  /** `when: {exists: ..., missing: ...}`: decided on the host's facts at each probe. */
  hostWhen?: HostCondition;
  /** Handler ids this resource does the work of: pending ones are dropped when it changes. */
  covers?: string[];
  /** Run the handlers still due before this resource's commands: all (true) or these ids. */
  flushHandlers?: true | string[];
  /** The variables its params were rendered from, for a type that explains its failures
   *  ("postgres_version is 15: the role's default for bookworm"). */
  origins?: VariableOrigin[];
}

export interface VariableOrigin {
  name: string;
  value: unknown;
  /** "inventories/production.yaml:12", "the default of role postgres for trixie" */
  from: string;
}

/** Paths that must exist / be missing on the host (absolute, rendered). */
export interface HostCondition {
  exists: string[];
  missing: string[];
}

export interface PlannedHandler {
  id: string;
  run: string;
  /** Handler ids this one does the work of: when both are due only this one runs. */
  covers?: string[];
}

export interface HostPlan {
  host: Host;
  vars: Vars;
  resources: PlannedResource[];
  handlers: Map<string, PlannedHandler>;
  /** The facts it was compiled for (only those in `byFacts`' dimensions matter). */
  facts?: HostFacts;
  /** Its values depend on the host's facts: a plan per known platform, chosen by the probe
   *  script itself (variants.ts). This plan is the first of them. */
  byFacts?: PlanVariants;
}

export interface PlanVariant {
  /** `case` patterns over $keel_platform (distribution/release/codename/machine/manager). */
  patterns: string[];
  /** The platforms it was compiled for (the same plan for each). */
  platforms: HostFacts[];
  plan: HostPlan;
}

export interface PlanVariants {
  variants: PlanVariant[];
  /** The plan for facts no variant covers (another platform, read by the probe): may throw a
   *  ConfigError (a default the role has only for other releases). */
  compile(facts: HostFacts): HostPlan;
}
