// A fleet's hosts compile the same resources: ten web servers differ in their names and
// addresses, which few resources read. Compiling every resource again for every host was the
// largest part of a no-op's controller time that grows with the role (a 400-resource role on
// 10 hosts: 50 ms of render). So compileHost records what its resource section reads, and a
// later host whose inputs give the same answers to every one of those reads takes the same
// resources and handlers.
//
// The record is exact, not a guess from the templates' text: every object the section reads
// a host's values from is wrapped in a ReadLog, whose proxy notes each name asked for (get,
// `in`, own-property checks) with the answer it got, and notes when all the names were listed.
// What the section reads without a ReadLog is the same for every host of the run by
// construction (the role library, the run's options) or compared whole (the host's facts, the
// role instances). A later host reuses the resources only when each recorded name gives the
// same answer: present or not, and a value deeply equal to the recorded one (same.ts:
// undefined is not missing, NaN and -0 are themselves).
import { same } from './same.js';
import type { PlannedHandler, PlannedResource } from './plan.js';
import type { FactName, HostFacts } from './facts.js';
import type { Role } from './roles.js';
import type { RoleInstance, Vars } from '../inventory/types.js';

/** What a host's resource section made, and every read it made of the host's inputs. */
export interface CompiledSection {
  resources: PlannedResource[];
  handlers: Map<string, PlannedHandler>;
}

/** The inputs of one host's resource section, as compileHost holds them. */
export interface SectionInputs {
  roles: Role[];
  instances: RoleInstance[];
  facts: HostFacts;
}

interface Entry {
  inputs: SectionInputs;
  logs: ReadLog[];
  factsRead: Set<FactName>;
  section: CompiledSection;
}

/** At most this many different sections are kept per list of roles: a fleet of hosts that all
 *  differ (a template naming each host) compiles each host and stops looking after these. */
const MAX_ENTRIES_PER_ROLES = 8;

/** One per run: the resource sections compiled so far, for the hosts after them. */
export class SectionCache {
  private readonly byRoles = new Map<string, Entry[]>();
  /** How many of the run's hosts apply each list of roles. */
  private readonly hostsByRoles = new Map<string, number>();

  /** `hosts`: the run's, each as the roles it applies (compileHost's instances). */
  constructor(hosts: Pick<RoleInstance, 'role' | 'name'>[][]) {
    for (const h of hosts) {
      const key = rolesKey(h);
      this.hostsByRoles.set(key, (this.hostsByRoles.get(key) ?? 0) + 1);
    }
  }

  /** Whether another host of the run applies the same roles: else recording the reads of this
   *  one's section would cost time for nothing (a demo's web, worker and db hosts). */
  worthRecording(inputs: SectionInputs): boolean {
    return (this.hostsByRoles.get(rolesKey(inputs.instances)) ?? 0) > 1;
  }

  /** An earlier host's section that reads the same from `sources` (in the order it recorded
   *  them), with the facts it read; undefined when none does. */
  find(inputs: SectionInputs, sources: object[]): { section: CompiledSection; factsRead: Set<FactName> } | undefined {
    for (const e of this.byRoles.get(rolesKey(inputs.instances)) ?? []) {
      if (!sameInputs(e.inputs, inputs) || e.logs.length !== sources.length) continue;
      if (e.logs.every((log, i) => log.matches(sources[i]!))) return { section: e.section, factsRead: e.factsRead };
    }
    return undefined;
  }

  keep(inputs: SectionInputs, logs: ReadLog[], factsRead: Set<FactName>, section: CompiledSection): void {
    const key = rolesKey(inputs.instances);
    const list = this.byRoles.get(key) ?? [];
    if (list.length >= MAX_ENTRIES_PER_ROLES) return;
    list.push({ inputs, logs, factsRead, section });
    this.byRoles.set(key, list);
  }
}

function rolesKey(instances: Pick<RoleInstance, 'role' | 'name'>[]): string {
  return JSON.stringify(instances.map((i) => [i.role, i.name ?? null]));
}

/** The same role objects, instances and facts. An instance's location is left out: the
 *  section reads it only in errors, and a section with errors is never kept. */
function sameInputs(a: SectionInputs, b: SectionInputs): boolean {
  return (
    a.roles.length === b.roles.length &&
    a.roles.every((r, i) => r === b.roles[i]) &&
    a.instances.length === b.instances.length &&
    a.instances.every((x, i) => {
      const y = b.instances[i]!;
      return x.role === y.role && x.name === y.name && same(x.vars, y.vars) && same(x.varLocations, y.varLocations);
    }) &&
    same(a.facts, b.facts)
  );
}

/**
 * Every read of one object, through `proxy`: the names asked for and what they answered
 * (read from the object itself when first asked, so a later change to it does not alter the
 * record), and whether its names were listed. `skip`: names whose reads are not compared
 * (`facts`, whose getters record what a plan depends on: compared whole in SectionInputs).
 */
export class ReadLog {
  /** Per name: whether it was there and, if its value was read, the value. */
  private readonly answers = new Map<PropertyKey, { present: boolean; value?: unknown; valueRead: boolean }>();
  private keys: PropertyKey[] | undefined;
  readonly proxy: Vars;

  constructor(target: object, skip: ReadonlySet<PropertyKey> = NO_NAMES) {
    // `in` asks only whether the name is there (a template's names are all checked, even in
    // a branch not taken); get and an own-property check read its value.
    const note = (k: PropertyKey, valueRead: boolean): void => {
      if (skip.has(k)) return;
      const a = this.answers.get(k);
      if (a && (a.valueRead || !valueRead)) return;
      const present = k in target;
      this.answers.set(
        k,
        valueRead ? { present, value: present ? (target as Record<PropertyKey, unknown>)[k] : undefined, valueRead } : { present, valueRead },
      );
    };
    this.proxy = new Proxy(target as Vars, {
      get: (t, k) => (note(k, true), Reflect.get(t, k)),
      has: (t, k) => (note(k, false), Reflect.has(t, k)),
      getOwnPropertyDescriptor: (t, k) => (note(k, true), Reflect.getOwnPropertyDescriptor(t, k)),
      ownKeys: (t) => {
        const keys = Reflect.ownKeys(t);
        this.keys ??= keys;
        return keys;
      },
    });
  }

  /** Would `other`, read the same way, answer every recorded read the same? */
  matches(other: object): boolean {
    if (this.keys && !same(this.keys, Reflect.ownKeys(other))) return false;
    for (const [k, a] of this.answers) {
      const present = k in other;
      if (present !== a.present || (present && a.valueRead && !same((other as Record<PropertyKey, unknown>)[k], a.value))) return false;
    }
    return true;
  }
}

const NO_NAMES: ReadonlySet<PropertyKey> = new Set();

/** `top`'s names over `base`'s, without copying `base` (a copy would read, and so record,
 *  every name of a ReadLog's proxy). Own properties only, as a spread `{...base, ...top}` has. */
export function overlay(base: Vars, top: Vars): Vars {
  const from = (k: PropertyKey): Vars => (Object.prototype.hasOwnProperty.call(top, k) ? top : base);
  return new Proxy({} as Vars, {
    get: (_t, k) => Reflect.get(from(k), k),
    has: (_t, k) => Reflect.has(top, k) || Reflect.has(base, k),
    ownKeys: () => [...new Set([...Reflect.ownKeys(base), ...Reflect.ownKeys(top)])],
    getOwnPropertyDescriptor: (_t, k) => {
      const d = Reflect.getOwnPropertyDescriptor(from(k), k);
      return d && { ...d, configurable: true };
    },
  });
}
