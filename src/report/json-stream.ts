// `--output json` written in pieces: the text of JSON.stringify(value, null, 2), exactly, but
// never all of it in memory at once. A 1,000-host run's report is ~40 MB of JSON; made in one
// piece it was a masked copy of the report, the string and its buffer on the way to stdout,
// the largest part of the controller's memory at the end of such a run.
//
// The outer `depth` levels of objects and arrays are written member by member; what is below
// them (a resource's result) is JSON.stringify'd, masked, and indented where it stands.

/** Calls `write` with pieces of about `chunk` characters whose concatenation is
 *  JSON.stringify(value, null, 2) (of `mask` applied to each value below `depth`). */
export function writeJson(value: unknown, write: (text: string) => void, mask: <T>(v: T) => T = (v) => v, depth = 3, chunk = 64 * 1024): void {
  // An object met again below `depth` (a result hosts share) is written from the text made
  // the second time. Only those texts are kept (null: met once), so a report of distinct
  // results is never held whole.
  const texts = new WeakMap<object, string | null>();
  const leaf = (v: unknown, indent: string): string => {
    if (v === null || typeof v !== 'object') return indented(JSON.stringify(mask(v), null, 2), indent);
    let text = texts.get(v);
    if (!text) {
      text = JSON.stringify(mask(v), null, 2);
      texts.set(v, texts.has(v) ? text : null);
    }
    return indented(text, indent);
  };
  let buf = '';
  const out = (s: string) => {
    buf += s;
    if (buf.length >= chunk) {
      write(buf);
      buf = '';
    }
  };
  emit(value, '', depth, out, leaf);
  write(buf + '\n');
}

/** JSON.stringify's text of a value written where `indent` stands. */
function indented(text: string, indent: string): string {
  return text.replaceAll('\n', `\n${indent}`);
}

/** What JSON.stringify leaves out of an object and writes as null in an array. */
const omitted = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

type Leaf = (v: unknown, indent: string) => string;

function emit(v: unknown, indent: string, depth: number, out: (s: string) => void, leaf: Leaf): void {
  const structured = depth > 0 && v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
  if (!structured) {
    out(leaf(v, indent));
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (!v.length) return out('[]');
    out('[\n');
    v.forEach((x, i) => {
      out(inner);
      if (omitted(x)) out('null');
      else emit(x, inner, depth - 1, out, leaf);
      out(i < v.length - 1 ? ',\n' : '\n');
    });
    return out(`${indent}]`);
  }
  const entries = Object.entries(v as object).filter(([, x]) => !omitted(x));
  if (!entries.length) return out('{}');
  out('{\n');
  entries.forEach(([k, x], i) => {
    out(`${inner}${JSON.stringify(k)}: `);
    emit(x, inner, depth - 1, out, leaf);
    out(i < entries.length - 1 ? ',\n' : '\n');
  });
  out(`${indent}}`);
}
