// Plain templates (text and `{{name}}` / `{{a.b}}` only), read by one regular-expression scan
// instead of Handlebars' parser. Most of a role's templates are plain (config files with
// variables), and the parser costs about 1 ms per 40-line file: a role of 60 templates spent
// 50 ms of a no-op's controller time in it. Anything the scan is not sure of (a helper, a
// block, a comment, an escape, whitespace control, a `\r`, an unmatched `{{`) returns null and
// goes to Handlebars.
//
// The scan gives the template as its parts (PlainTemplate), which render and the name checks
// use as they are: building Handlebars' AST for them, with a location object for every node,
// was most of a 400-resource role's render. quickParse builds that AST from the same scan, so
// that a unit test can compare it with Handlebars' own on every built-in template and on the
// edge cases: the scan is right where the AST is.

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
/** `{{ a.b }}`: group 1 the spaces after `{{`, group 2 the path. */
const MUSTACHE = new RegExp(`\\{\\{([ \\t]*)(${NAME}(?:\\.${NAME})*)[ \\t]*\\}\\}`, 'y');
/** Words Handlebars reads as literals or keywords, not as a variable's name. */
const RESERVED = new Set(['true', 'false', 'null', 'undefined', 'else', 'this', 'as']);

/** A `{{path}}` of a plain template: its text, its parts, where the path starts (Handlebars'
 *  line from 1 and column from 0, in UTF-16 units). */
export interface PlainPath {
  original: string;
  parts: string[];
  line: number;
  column: number;
}

/** A plain template: texts[i] comes before paths[i], and the last text after the last path. */
export interface PlainTemplate {
  texts: string[];
  paths: PlainPath[];
}

/** A scanned `{{path}}` with its offsets in the source: `{{` at `open`, the path at `start`,
 *  the end after `}}` at `end` (quickParse's AST needs them). */
interface ScannedPath extends PlainPath {
  open: number;
  start: number;
  end: number;
}

interface Scanned extends PlainTemplate {
  paths: ScannedPath[];
}

/** `source` as a plain template, or null when it is not plain (or the scan is not sure). */
export function scanPlain(source: string): Scanned | null {
  if (source.includes('\r') || source.includes('\0')) return null;
  const texts: string[] = [];
  const paths: ScannedPath[] = [];
  const lines = new Cursor(source);
  let at = 0;
  for (;;) {
    const open = source.indexOf('{{', at);
    if (open < 0) break;
    if (source[open - 1] === '\\') return null; // an escaped mustache
    MUSTACHE.lastIndex = open;
    const m = MUSTACHE.exec(source);
    if (!m) return null;
    const end = open + m[0].length;
    if (source[end] === '}') return null; // `}}}` closes a triple mustache: Handlebars' error
    const original = m[2]!;
    const parts = original.split('.');
    if (parts.some((p) => RESERVED.has(p))) return null;
    const start = open + 2 + m[1]!.length;
    const { line, column } = lines.at(start);
    texts.push(source.slice(at, open));
    paths.push({ original, parts, line, column, open, start, end });
    at = end;
  }
  if (paths.length === 0) return null; // no `{{` at all: nothing to render
  texts.push(source.slice(at));
  return { texts, paths };
}

/** The AST Handlebars' `parse` gives for `source`, or null when `source` is not plain. */
export function quickParse(source: string): hbs.AST.Program | null {
  const plain = scanPlain(source);
  if (!plain) return null;
  const body: hbs.AST.Statement[] = [];
  const pos = new Cursor(source);
  let at = 0;
  plain.paths.forEach((p, i) => {
    if (p.open > at) body.push(content(plain.texts[i]!, pos.at(at), pos.at(p.open)));
    body.push(mustache(p.parts, p.original, { line: p.line, column: p.column }, pos.at(p.start + p.original.length), pos.at(p.open), pos.at(p.end)));
    at = p.end;
  });
  if (source.length > at) body.push(content(plain.texts[plain.texts.length - 1]!, pos.at(at), pos.at(source.length)));
  const first = body[0]!.loc;
  const last = body[body.length - 1]!.loc;
  return { type: 'Program', body, strip: {}, loc: { source: undefined, start: first.start, end: last.end } } as unknown as hbs.AST.Program;
}

interface Position {
  line: number;
  column: number;
}

function content(text: string, start: Position, end: Position): hbs.AST.Statement {
  return { type: 'ContentStatement', original: text, value: text, loc: { source: undefined, start, end } } as unknown as hbs.AST.Statement;
}

function mustache(parts: string[], original: string, pathStart: Position, pathEnd: Position, start: Position, end: Position): hbs.AST.Statement {
  return {
    type: 'MustacheStatement',
    path: { type: 'PathExpression', data: false, depth: 0, parts, original, loc: { source: undefined, start: pathStart, end: pathEnd } },
    params: [],
    hash: undefined,
    escaped: true,
    strip: { open: false, close: false },
    loc: { source: undefined, start, end },
  } as unknown as hbs.AST.Statement;
}

/** Line (from 1) and column (from 0, in UTF-16 units, as Handlebars counts) of an offset;
 *  offsets are asked for in increasing order. */
class Cursor {
  private offset = 0;
  private line = 1;
  private lineStart = 0;

  constructor(private readonly source: string) {}

  at(offset: number): Position {
    for (let nl = this.source.indexOf('\n', this.offset); nl >= 0 && nl < offset; nl = this.source.indexOf('\n', nl + 1)) {
      this.line++;
      this.lineStart = nl + 1;
    }
    this.offset = offset;
    return { line: this.line, column: offset - this.lineStart };
  }
}
