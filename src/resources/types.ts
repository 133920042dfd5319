// A resource type is one small module with three parts:
//  - probe: a shell snippet that reports the current state of ALL resources of this type on a
//    host at once (one dpkg-query for all packages, one stat for all paths...);
//  - decide: a pure function from (desired params, facts) to a Decision; no I/O;
//  - the commands inside a Decision, which converge the resource when run on the host.
// Nothing here holds a connection: the engine compiles probes and commands into one script.
import type { JSONSchemaType } from 'ajv';
import type { Shell } from '../shell/quote.js';

/** Facts reported by a probe for one resource: field -> value (strings, one line each). */
export type Facts = Record<string, string>;

/** The facts of a resource its probe printed nothing for. Shared: facts are not changed after
 *  parsing (decide() is pure). */
export const NO_FACTS: Facts = Object.freeze({});

export interface ProbeItem<P> {
  /** Opaque key the probe must print first on each of its lines for this resource. */
  key: string;
  params: P;
}

/** A file's content change, for --diff (the engine masks secrets in it). */
export interface ContentDiff {
  path: string;
  before: string | null; // null: file absent
  after: string | null; // null: file removed
  sensitive?: boolean; // never show the content, only that it changed
}

export type Decision =
  | { kind: 'ok'; reason: string }
  | {
      kind: 'change';
      reason: string;
      /** Shell commands, run in order under `set -e` in one subshell on the host. */
      commands: Shell[];
      diff?: ContentDiff;
      /** The engine cannot verify this resource afterwards (an unguarded command). */
      unverifiable?: boolean;
    };

export interface DecideContext {
  /** True when --diff asked for content diffs (probes then also returned old contents). */
  wantDiff: boolean;
}

export interface ResourceType<P> {
  /** Key used in role.yaml: `package`, `file`, ... */
  readonly name: string;
  /** What docs/resources.md says of it (with each param's schema `description`). */
  readonly doc: { summary: string; example: string };
  /** JSON Schema for the params, checked with ajv before anything runs. */
  readonly schema: JSONSchemaType<P> | Record<string, unknown>;
  /** Short identity for reports and ids: `/etc/nginx/nginx.conf`, `nginx`... */
  identity(params: P): string;
  /** Shell that reports the state of all items, by default as `key<TAB>field<TAB>value`
   *  lines. Runs with `set +e` and must never fail the script. */
  probe(items: ProbeItem<P>[], ctx: DecideContext): Shell;
  /** Shell run before every type's probe, printing nothing: work its probe will wait for (the
   *  command type starts its guards there, so they run while the other types are probed). */
  probeStart?(items: ProbeItem<P>[], ctx: DecideContext): Shell;
  /** Turn this type's probe output into facts per key (default: parseFacts). */
  parse?(output: string, items: ProbeItem<P>[]): Map<string, Facts>;
  /** Pure: state in, decision out. Throws ConfigError only for impossible params. */
  decide(params: P, facts: Facts, ctx: DecideContext): Decision;
  /** Changing it changes the host broadly (installing packages creates files, users and
   *  units): the engine decides the resources after it again, on fresh facts. */
  readonly barrier?: boolean;
  /** Its commands have effects beyond the state the probe sees (the author's own shell): they
   *  run at most once per run, and a run that leaves the resource unconverged fails. */
  readonly runsOnce?: boolean;
  /** Why the resource is still not converged after it ran ("/x still does not exist"). */
  unmet?(params: P, facts: Facts): string;
  /** What a failed command's output says went wrong, when the type recognises it ("no package
   *  postgresql-15 in this host's apt sources"); the engine adds where the params came from. */
  explainFailure?(params: P, output: string): string | undefined;
  /** Fill in defaults / normalise params after schema validation (e.g. mode "644" -> "0644"). */
  normalize?(params: P): P;
}

/** Parse probe output lines (`key\tfield\tvalue`) into key -> facts. */
export function parseFacts(output: string): Map<string, Facts> {
  const out = new Map<string, Facts>();
  for (const line of output.split('\n')) {
    if (!line) continue;
    const t1 = line.indexOf('\t');
    const t2 = t1 < 0 ? -1 : line.indexOf('\t', t1 + 1);
    if (t1 < 0) continue;
    const key = line.slice(0, t1);
    const field = t2 < 0 ? line.slice(t1 + 1) : line.slice(t1 + 1, t2);
    const value = t2 < 0 ? '' : line.slice(t2 + 1);
    let facts = out.get(key);
    if (!facts) out.set(key, (facts = {}));
    facts[field] = value;
  }
  return out;
}

export function ok(reason: string): Decision {
  return { kind: 'ok', reason };
}

export function change(reason: string, commands: Shell[], extra?: Partial<Extract<Decision, { kind: 'change' }>>): Decision {
  return { kind: 'change', reason, commands, ...extra };
}
