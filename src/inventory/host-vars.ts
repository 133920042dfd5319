// A host's variables from every layer that sets them, lowest first: the Ansible tree's (as
// ansible-tree.ts ranks them), then keel's own (the YAML inventory's vars, its groups', the
// host's, -e). A later layer replaces a whole variable. Along the way:
//
// - the winning Ansible connection variables (ansible_host, ansible_user...) become the
//   host's connection and leave its variables (ansible-connection.ts);
// - a value from the Ansible tree that keel cannot evaluate (jinja.ts) leaves the variables
//   too, and is reported (Host.unevaluable) instead of being used as written;
// - each variable keeps every place that set it (Host.varSources, keel inventory --explain).
import type { SourceLocation } from '../errors.js';
import { connectionFromVars, isConnectionVar } from './ansible-connection.js';
import { firstJinja, hasJinja, jinjaProblem, type JinjaProblem, type NameKind } from './jinja.js';
import type { AnsibleLayer, RawConnection, RawVars } from './raw.js';
import type { Unevaluable, VarSource, Vars } from './types.js';

export interface KeelLayer {
  label: string;
  vars: RawVars;
}

type Layer = KeelLayer & Partial<Pick<AnsibleLayer, 'secrets' | 'unsafe' | 'hostLevel'>> & { ansible?: boolean };

export interface HostVars {
  values: Vars;
  locations: Record<string, SourceLocation>;
  sources: Record<string, VarSource[]>;
  /** Winners never rendered as templates (Ansible's !unsafe). */
  literal: string[];
  secretVars: string[];
  unevaluable: Unevaluable[];
  /** What the Ansible connection variables make, and the part of it set on the host itself. */
  connection: RawConnection;
  ownConnection: RawConnection;
  connectionVars: Record<string, { value: unknown; source: VarSource }>;
}

interface Merged {
  values: Vars;
  locations: Record<string, SourceLocation>;
  sources: Record<string, VarSource[]>;
  winner: Record<string, Layer>;
}

function merge(layers: Layer[], into: Merged = { values: {}, locations: {}, sources: {}, winner: {} }): Merged {
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.vars.values)) {
      const location = layer.vars.locations[k]!;
      into.values[k] = v;
      into.locations[k] = location;
      into.winner[k] = layer;
      const reads = layer.vars.ansibleReadsAs;
      (into.sources[k] ??= []).push({
        label: layer.label,
        location,
        ...(layer.secrets?.has(k) && { secret: true }),
        ...(reads && k in reads && { ansibleReadsAs: { value: reads[k] } }),
      });
    }
  }
  return into;
}

export function mergeHostVars(ansibleLayers: AnsibleLayer[], keelLayers: KeelLayer[]): HostVars {
  const a = merge(ansibleLayers.map((l) => ({ ...l, ansible: true })));
  const unevaluable: Unevaluable[] = [];
  const connectionVars: HostVars['connectionVars'] = {};
  const conn: Merged = { values: {}, locations: {}, sources: {}, winner: {} };
  for (const name of Object.keys(a.values).filter(isConnectionVar)) {
    const value = a.values[name];
    const source = a.sources[name]!.at(-1)!;
    connectionVars[name] = { value, source };
    if (hasJinja(value)) {
      // Not even {{ name }}: the connection is made before any template is rendered.
      const secret = !!a.winner[name]!.secrets?.has(name);
      const p = jinjaProblem(value, () => 'absent');
      const why = `keel does not render connection settings${p ? ` (${p.why})` : ''}`;
      unevaluable.push(named(name, source.location, { expression: p?.expression ?? firstJinja(value)!, why, keel: p?.keel }, secret, { connection: true }));
    } else {
      conn.values[name] = value;
      conn.locations[name] = a.locations[name]!;
      conn.winner[name] = a.winner[name]!;
    }
    delete a.values[name];
    delete a.locations[name];
    delete a.sources[name];
    delete a.winner[name];
  }
  const own = Object.keys(conn.values).filter((k) => conn.winner[k]!.hostLevel);
  const connection = connectionFromVars(conn.values, conn.locations);
  const ownConnection = connectionFromVars(pick(conn.values, own), pick(conn.locations, own));

  const all = merge(keelLayers, a);
  // Jinja in a value the Ansible tree gave: keel's templates read {{ name.path }} as Jinja
  // does; anything else is left out. A value that refers to one left out is left out too.
  const out = new Set<string>();
  const kind = (n: string): NameKind => (out.has(n) ? 'unevaluable' : n in all.values ? 'var' : 'absent');
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, layer] of Object.entries(all.winner)) {
      if (out.has(name) || !layer.ansible || layer.unsafe?.has(name)) continue;
      const p = jinjaProblem(all.values[name], kind);
      if (!p) continue;
      out.add(name);
      unevaluable.push(named(name, all.locations[name]!, p, !!layer.secrets?.has(name)));
      changed = true;
    }
  }
  for (const name of out) delete all.values[name];
  const winners = Object.entries(all.winner);
  return {
    values: all.values,
    locations: all.locations,
    sources: all.sources,
    literal: winners.filter(([n, l]) => l.unsafe?.has(n)).map(([n]) => n),
    secretVars: winners.filter(([n, l]) => l.secrets?.has(n) && !out.has(n)).map(([n]) => n),
    unevaluable,
    connection,
    ownConnection,
    connectionVars,
  };
}

/** A secret's expression, and anything derived from it, is never shown. */
function named(name: string, location: SourceLocation, p: JinjaProblem, secret: boolean, over: Partial<Unevaluable> = {}): Unevaluable {
  if (secret)
    return {
      name,
      location,
      why: 'its value, decrypted from Ansible Vault, holds Jinja keel cannot evaluate',
      ...over,
      ...(over.why && { why: over.why.replace(/ \(.*\)$/, '') }),
    };
  return { name, location, expression: p.expression, why: p.why, ...(p.keel && { keel: p.keel }), ...over };
}

function pick<T>(o: Record<string, T>, keys: string[]): Record<string, T> {
  return Object.fromEntries(keys.map((k) => [k, o[k]!]));
}
