// The handlers of one host's apply: which are owed (notified in this run, or still pending on
// the host from an earlier one), which failed in this run, and the keys (H0, H1...) of those a
// pass runs, which is how the script's step lines name them.
import type { PlannedHandler } from './plan.js';
import type { ApplyHandler } from './script.js';

export class HandlerLedger {
  /** Pending on the host from an earlier run, but gone from the roles: the first pass forgets them. */
  readonly forget: string[];
  private owed: Set<string>;
  /** Failed in this run: they stay pending for the next run, and do not run again now. */
  private readonly failed = new Set<string>();
  private readonly coveredBy: Map<string, string[]>;
  /** This pass's handlers, in key order. */
  private keyed: ApplyHandler[] = [];

  constructor(
    private readonly handlers: Map<string, PlannedHandler>,
    pendingOnHost: string[],
  ) {
    this.owed = new Set(pendingOnHost.filter((h) => handlers.has(h)));
    this.forget = pendingOnHost.filter((h) => !handlers.has(h));
    this.coveredBy = coverers(handlers);
  }

  /** A new apply script: its handlers are keyed from H0. */
  newPass(): void {
    this.keyed = [];
  }

  notify(ids: string[]): void {
    for (const h of ids) this.owed.add(h);
  }

  /** The handlers due now (owed, not failed), in the roles' order, keyed for this pass's script.
   *  `only`: the ids a `flush_handlers` names (true: all). */
  takeDue(only: true | string[] = true): ApplyHandler[] {
    const due = [...this.handlers.values()].filter((h) => this.owed.has(h.id) && !this.failed.has(h.id) && (only === true || only.includes(h.id)));
    return due.map((h) => {
      const ah: ApplyHandler = { key: `H${this.keyed.length}`, id: h.id, run: h.run, covers: h.covers, coveredBy: this.coveredBy.get(h.id) };
      this.keyed.push(ah);
      return ah;
    });
  }

  /** The handler a step line of this pass's script names. */
  byKey(key: string): ApplyHandler {
    return this.keyed.find((x) => x.key === key)!;
  }

  ranFailed(h: ApplyHandler): void {
    this.failed.add(h.id);
  }

  /** After a final pass that got through: the handlers that ran are paid; failed ones stay owed. */
  settle(): void {
    this.owed = new Set(this.failed);
  }

  get nothingOwed(): boolean {
    return this.owed.size === 0;
  }
}

/** For each handler, the handlers that cover it (`covers:`). */
function coverers(handlers: Map<string, PlannedHandler>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of handlers.values()) {
    for (const c of h.covers ?? []) out.set(c, [...(out.get(c) ?? []), h.id]);
  }
  return out;
}
