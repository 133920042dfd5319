// The vault's plaintext: a YAML mapping. Errors give file:line:col and a fixed description,
// never the yaml library's message, which quotes the offending (secret) line.
import { Document, LineCounter, isMap, isScalar, parseDocument, stringify } from 'yaml';
import { ConfigError } from '../errors.js';

export const KEY_SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

const YAML_PROBLEMS: Record<string, string> = {
  ALIAS_PROPS: 'an alias cannot have an anchor or tag',
  BAD_ALIAS: 'bad alias',
  BAD_DIRECTIVE: 'bad directive',
  BAD_DQ_ESCAPE: 'bad escape in a double-quoted string',
  BAD_INDENT: 'bad indentation',
  BAD_PROP_ORDER: 'anchor and tag in the wrong order',
  BAD_SCALAR_START: 'a plain value cannot start with this character (quote it)',
  BLOCK_AS_IMPLICIT_KEY: 'nested mapping where a value was expected (quote values that contain ": ")',
  BLOCK_IN_FLOW: 'block value inside a flow collection',
  DUPLICATE_KEY: 'duplicate key',
  IMPOSSIBLE: 'unparseable YAML',
  KEY_OVER_1024_CHARS: 'key longer than 1024 characters',
  MISSING_CHAR: 'missing closing character (quote or bracket)',
  MULTILINE_IMPLICIT_KEY: 'a key cannot span lines',
  MULTIPLE_ANCHORS: 'several anchors on one node',
  MULTIPLE_DOCS: 'more than one YAML document',
  MULTIPLE_TAGS: 'several tags on one node',
  NON_STRING_KEY: 'keys must be strings',
  TAB_AS_INDENT: 'tab used for indentation',
  TAG_RESOLVE_FAILED: 'unknown tag',
  UNEXPECTED_TOKEN: 'unexpected token',
  BAD_COLLECTION_TYPE: 'wrong collection type for its tag',
};

export interface SecretsDoc {
  doc: Document;
  data: Record<string, unknown>;
}

/** Parses and validates vault YAML: one mapping (an empty document counts as an empty one)
 *  whose top-level keys are names templates can use as `secrets.<key>`. */
export function parseSecrets(text: string, file: string): SecretsDoc {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const p = offset === undefined ? undefined : lc.linePos(offset);
    return { file, line: p?.line, column: p?.col };
  };
  const first = doc.errors[0];
  if (first) {
    throw new ConfigError(`invalid YAML: ${YAML_PROBLEMS[first.code] ?? first.code.toLowerCase().replace(/_/g, ' ')}`, at(first.pos[0]));
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new ConfigError('the secrets must be a YAML mapping (key: value lines)', at(doc.contents.range?.[0]));
  }
  if (isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (typeof key !== 'string' || !KEY_SEGMENT.test(key)) {
        const pos = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
        throw new ConfigError('invalid key name: use letters, digits and _ (not starting with a digit), so templates can use it as secrets.<key>', at(pos));
      }
    }
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch {
    throw new ConfigError('invalid YAML: aliases could not be resolved', { file });
  }
  return { doc, data: data as Record<string, unknown> };
}

/** `a.b.c` → ['a','b','c'], each segment a valid name. */
export function parsePath(key: string): string[] {
  const parts = key.split('.');
  for (const p of parts) {
    if (!KEY_SEGMENT.test(p)) {
      throw new ConfigError(`invalid key '${key}': each dot-separated part must match ${KEY_SEGMENT.source} (letters, digits, _; not starting with a digit)`);
    }
  }
  return parts;
}

export function getPath(data: Record<string, unknown>, path: string[]): unknown {
  let cur: unknown = data;
  for (const p of path) {
    if (!cur || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, p)) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** The vault text with `path` set to a string, keeping comments and layout elsewhere. */
export function setPath(sd: SecretsDoc, path: string[], value: string, file: string): string {
  const { doc } = sd;
  if (doc.contents === null) doc.contents = doc.createNode({});
  for (let i = 1; i < path.length; i++) {
    const node = doc.getIn(path.slice(0, i), true);
    if (node !== undefined && !isMap(node)) {
      throw new ConfigError(`cannot set ${path.join('.')}: ${path.slice(0, i).join('.')} is not a mapping`, { file });
    }
  }
  doc.setIn(path, value);
  return doc.toString();
}

/** Leaf paths in document order: `a.b`, `list[0]`. Empty collections are leaves. */
export function flattenPaths(value: unknown, prefix = ''): Array<[string, unknown]> {
  if (!prefix && value && typeof value === 'object' && !Object.keys(value).length) return [];
  if (Array.isArray(value) && value.length) {
    return value.flatMap((v, i) => flattenPaths(v, `${prefix}[${i}]`));
  }
  if (value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
    const entries = Object.entries(value);
    if (entries.length) return entries.flatMap(([k, v]) => flattenPaths(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, value]];
}

/** How `get` prints a value: strings raw, other scalars as text, collections as YAML. */
export function valueToText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || typeof v !== 'object') return String(v);
  return stringify(v).replace(/\n$/, '');
}
