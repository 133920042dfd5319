// What the engine works on: a host's resources in order, with rendered params.
import type { SourceLocation } from '../errors.js';
import type { Host, Vars } from '../inventory/types.js';
import type { ResourceType } from '../resources/types.js';

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
}
