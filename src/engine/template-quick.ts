// The Handlebars AST of a plain template (text and `{{name}}` / `{{a.b}}` only), built by one
// regular-expression scan instead of Handlebars' parser. Most of a role's templates are plain
// (config files with variables), and the parser costs about 1 ms per 40-line file: a role of
// 60 templates spent 50 ms of a no-op's controller time in it. Anything the scan is not sure
// of (a helper, a block, a comment, an escape, whitespace control, a `\r`, an unmatched `{{`)
// returns null and goes to Handlebars, so the AST is always Handlebars' own: a unit test
// compares the two on every built-in template and on the edge cases.

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
/** `{{ a.b }}`: group 1 the spaces after `{{`, group 2 the path. */
const MUSTACHE = new RegExp(`\\{\\{([ \\t]*)(${NAME}(?:\\.${NAME})*)[ \\t]*\\}\\}`, 'y');
/** Words Handlebars reads as literals or keywords, not as a variable's name. */
const RESERVED = new Set(['true', 'false', 'null', 'undefined', 'else', 'this', 'as']);

interface Position {
  line: number;
  column: number;
}

/** The AST Handlebars' `parse` gives for `source`, or null when `source` is not plain. */
export function quickParse(source: string): hbs.AST.Program | null {
  if (source.includes('\r') || source.includes('\0')) return null;
  const body: hbs.AST.Statement[] = [];
  const pos = new Cursor(source);
  let at = 0;
  for (;;) {
    const open = source.indexOf('{{', at);
    const textEnd = open < 0 ? source.length : open;
    if (textEnd > at) body.push(content(source.slice(at, textEnd), pos.at(at), pos.at(textEnd)));
    if (open < 0) break;
    if (source[open - 1] === '\\') return null; // an escaped mustache
    MUSTACHE.lastIndex = open;
    const m = MUSTACHE.exec(source);
    if (!m) return null;
    const end = open + m[0].length;
    if (source[end] === '}') return null; // `}}}` closes a triple mustache: Handlebars' error
    const parts = m[2]!.split('.');
    if (parts.some((p) => RESERVED.has(p))) return null;
    const pathStart = open + 2 + m[1]!.length;
    body.push(mustache(parts, m[2]!, pos.at(pathStart), pos.at(pathStart + m[2]!.length), pos.at(open), pos.at(end)));
    at = end;
  }
  const first = body[0]!.loc;
  const last = body[body.length - 1]!.loc;
  return { type: 'Program', body, strip: {}, loc: { source: undefined, start: first.start, end: last.end } } as unknown as hbs.AST.Program;
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
