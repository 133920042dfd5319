// YAML as Ansible reads it: PyYAML's YAML 1.1 resolver (yes/no/on/off are booleans, 0777 is
// octal, 1:30 is 90, 1e3 is a string but 1.0e+3 a number, y and n stay strings, dates stay
// text as ansible-inventory prints them), with Ansible's own tags: `!vault |` (an inline
// Ansible Vault value) and `!unsafe` (a string Ansible never templates).
//
// The values come out as plain JS; an inline vault value comes out as a VaultText holding
// its envelope, which the caller decrypts (ansible-vars-files.ts), and an !unsafe string as
// an UnsafeText.
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document, type Node, type Pair } from 'yaml';
import { ConfigError, type SourceLocation } from '../errors.js';

export class VaultText {
  constructor(readonly envelope: string) {}
}

export class UnsafeText {
  constructor(readonly text: string) {}
}

const BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const INT = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const FLOAT = new RegExp(
  '^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?|\\.[0-9_]+(?:[eE][-+][0-9]+)?' +
    '|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$',
);

/** PyYAML's constructors (constructor.py: construct_yaml_int, construct_yaml_float). */
function sexagesimal(digits: string, parse: (s: string) => number): number {
  let value = 0;
  let base = 1;
  for (const part of digits.split(':').reverse()) {
    value += parse(part) * base;
    base *= 60;
  }
  return value;
}

function pyInt(text: string): number {
  let s = text.replace(/_/g, '');
  let sign = 1;
  if (s[0] === '-') sign = -1;
  if (s[0] === '-' || s[0] === '+') s = s.slice(1);
  if (s === '0') return 0;
  if (s.startsWith('0b')) return sign * parseInt(s.slice(2), 2);
  if (s.startsWith('0x')) return sign * parseInt(s.slice(2), 16);
  if (s.startsWith('0')) return sign * parseInt(s, 8);
  if (s.includes(':')) return sign * sexagesimal(s, (p) => parseInt(p, 10));
  return sign * parseInt(s, 10);
}

function pyFloat(text: string): number {
  let s = text.replace(/_/g, '').toLowerCase();
  let sign = 1;
  if (s[0] === '-') sign = -1;
  if (s[0] === '-' || s[0] === '+') s = s.slice(1);
  if (s === '.inf') return sign * Infinity;
  if (s === '.nan') return NaN;
  if (s.includes(':')) return sign * sexagesimal(s, Number);
  return sign * Number(s);
}

const REPLACED = new Set(['tag:yaml.org,2002:bool', 'tag:yaml.org,2002:int', 'tag:yaml.org,2002:float', 'tag:yaml.org,2002:timestamp']);

type Tag = { tag: string; default?: boolean; test?: RegExp; resolve: (s: string) => unknown; identify?: (v: unknown) => boolean };

const pyyamlTags = (tags: unknown[]): unknown[] => [
  ...(tags as Tag[]).filter((t) => !REPLACED.has(t.tag)),
  {
    tag: 'tag:yaml.org,2002:bool',
    default: true,
    test: BOOL,
    resolve: (s: string) => /^(?:yes|true|on)$/i.test(s),
    identify: (v: unknown) => typeof v === 'boolean',
  },
  { tag: 'tag:yaml.org,2002:int', default: true, test: INT, resolve: pyInt, identify: (v: unknown) => Number.isInteger(v) },
  { tag: 'tag:yaml.org,2002:float', default: true, test: FLOAT, resolve: pyFloat, identify: (v: unknown) => typeof v === 'number' },
  { tag: '!vault', resolve: (s: string) => new VaultText(s) },
  { tag: '!unsafe', resolve: (s: string) => new UnsafeText(s) },
];

export interface AnsibleYaml {
  doc: Document;
  file: string;
  /** The whole document as JS values (VaultText and UnsafeText where those tags are). */
  data: unknown;
  at(node: unknown): SourceLocation;
}

/**
 * Parses `text` as Ansible would. A syntax error names file, line and column; with
 * `secret` (the text was decrypted from a vault) its message quotes nothing of the text.
 */
export function parseAnsibleYaml(text: string, file: string, opts: { secret?: boolean } = {}): AnsibleYaml {
  const lines = new LineCounter();
  const doc = parseDocument(text, { version: '1.1', customTags: pyyamlTags as never, lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const at = (node: unknown): SourceLocation => {
    const range = (node as Node | null | undefined)?.range;
    if (!range) return { file };
    const p = lines.linePos(range[0]);
    return { file, line: p.line, column: p.col };
  };
  const first = doc.errors[0];
  if (first) {
    const pos = lines.linePos(first.pos[0]);
    const what = opts.secret
      ? `YAML syntax error (${first.code}) in the decrypted text`
      : `YAML syntax error: ${first.message.split('\n')[0]!.replace(/ at line \d+.*$/, '')}`;
    throw new ConfigError(what, { file, line: pos.line, column: pos.col });
  }
  return { doc, file, at, data: doc.toJS({ maxAliasCount: 1000 }) };
}

/** The pairs of a mapping node in file order (a key written twice: the later one). */
export function pairsOf(node: unknown): Map<string, Pair> {
  const out = new Map<string, Pair>();
  if (!isMap(node)) return out;
  for (const pair of node.items) if (isPair(pair)) out.set(String(isScalar(pair.key) ? pair.key.value : pair.key), pair);
  return out;
}

/** A vars file's top-level mapping with the location of each key; null for an empty document
 *  (Ansible skips empty vars files); an error for anything but a mapping. */
export function varsMapping(y: AnsibleYaml, what: string): { values: Record<string, unknown>; locations: Record<string, SourceLocation> } | null {
  const root = y.doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return null;
  if (!isMap(root) || y.data === null || typeof y.data !== 'object' || Array.isArray(y.data)) {
    throw new ConfigError(`${what} must be a mapping of variable names to values`, y.at(root));
  }
  const values = y.data as Record<string, unknown>;
  const locations: Record<string, SourceLocation> = {};
  const pairs = pairsOf(root);
  const merge = pairs.get('<<');
  for (const key of Object.keys(values)) locations[key] = y.at(pairs.get(key)?.key ?? merge?.key ?? root);
  return { values, locations };
}
