// Roles cannot inject: a role's shell fields (a command's `run`, `unless`, `only_if`, a file's
// or template's `validate`, a handler's `run`, a service handler's unit name) are shell that
// keel runs as written, after rendering. A value rendered into them bare is shell too: a
// variable holding `$(touch x)` runs. So compile refuses a bare `{{var}}` there, with the fix
// (`{{quote var}}`), unless the variable's schema admits only characters that need no quoting
// (an integer, a boolean, an enum of plain words, a string whose anchored pattern uses only
// those characters). `creates`/`removes` are not shell fields: keel quotes them as one word.
import Handlebars from 'handlebars';
import { ConfigError, type SourceLocation } from '../errors.js';

/** Where a shell field is, and its text as written in role.yaml. */
export interface ShellField {
  what: string;
  text: string;
  location: SourceLocation;
  /** The text is a whole file: errors point at each mustache's own line and column. */
  file?: boolean;
}

type Schema = Record<string, unknown>;

/** Characters a shell word may hold bare (the same set `quote` leaves unquoted). */
const SAFE_CHAR = /^[A-Za-z0-9_@%+=:,./-]$/;
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]*$/;

/** Loop and context names whose values are never shell: `@index` is a number. */
const ALWAYS_SAFE = new Set(['@index', '@first', '@last']);

/** The bare mustaches of `text` whose variables are not known to be safe, one error each. */
export function checkShellField(field: ShellField, schemaOf: Scope): ConfigError[] {
  let ast: hbs.AST.Program;
  try {
    ast = Handlebars.parse(field.text);
  } catch {
    return []; // a syntax error is reported when the field is rendered, with its line
  }
  const errors: ConfigError[] = [];
  let at = field.location;
  const refuse = (expr: string, why: string) =>
    errors.push(
      new ConfigError(
        `${field.what}: ${expr} is rendered into shell unquoted (${why}); ` +
          `write {{quote ${expr.slice(2, -2).trim()}}} so a value like $(...) or a quote stays one word`,
        at,
      ),
    );
  const lines = field.text.split('\n');
  walk(ast, schemaOf, (node, scope) => {
    if (field.file) at = { file: field.location.file, line: node.loc.start.line, column: node.loc.start.column + 1 };
    const name = (node.path as hbs.AST.PathExpression).original;
    const shown = `{{${name}${node.params.length ? ' …' : ''}}}`;
    if (name === 'quote' && node.params.length === 1) return;
    // In a comment only a newline would matter: it would start a line of shell.
    const comment = /^\s*#/.test(lines[node.loc.start.line - 1]?.slice(0, node.loc.start.column) ?? '');
    if (comment && oneLine(node, scope)) return;
    // `add` renders a number (or NaN): nothing the shell interprets.
    if (name === 'add' && node.params.length === 2 && !node.hash) return;
    if (node.params.length || node.hash) return refuse(shown, `the output of the helper "${name}" is not quoted`);
    if (ALWAYS_SAFE.has(name)) return;
    if (name.startsWith('secrets.')) return refuse(shown, 'a secret on a command line is also visible in the process list');
    const schema = scope(name);
    if (!schema) return refuse(shown, `"${name}" has no schema in this role that admits only safe characters`);
    if (schema['x-shell'] === true) return; // the operator's own shell command, run as written
    if (!safeSchema(schema)) return refuse(shown, `the schema of "${name}" admits characters the shell interprets`);
  });
  return errors;
}

type Scope = (name: string) => Schema | undefined;

/** Visit every mustache; inside `{{#each list}}`, `this` and `@key` take the list's schemas. */
function walk(node: hbs.AST.Node, scope: Scope, visit: (m: hbs.AST.MustacheStatement, scope: Scope) => void): void {
  switch (node.type) {
    case 'Program':
      for (const s of (node as hbs.AST.Program).body) walk(s, scope, visit);
      break;
    case 'MustacheStatement':
      visit(node as hbs.AST.MustacheStatement, scope);
      break;
    case 'BlockStatement': {
      const b = node as hbs.AST.BlockStatement;
      const inner = eachScope(b, scope) ?? scope;
      if (b.program) walk(b.program, inner, visit);
      if (b.inverse) walk(b.inverse, scope, visit);
      break;
    }
  }
}

function eachScope(b: hbs.AST.BlockStatement, outer: Scope): Scope | undefined {
  const param = b.params[0];
  if ((b.path as hbs.AST.PathExpression).original !== 'each') return undefined;
  if (param?.type === 'SubExpression' && ((param as hbs.AST.SubExpression).path as hbs.AST.PathExpression).original === 'range')
    return (name) => (name === 'this' ? { type: 'integer' } : outer(name));
  if (param?.type !== 'PathExpression') return undefined;
  const list = outer((param as hbs.AST.PathExpression).original);
  const element = (list?.items ?? list?.additionalProperties) as Schema | undefined;
  const names = list?.propertyNames as Schema | undefined;
  const key: Schema | undefined = list?.type === 'array' ? { type: 'integer' } : names && { type: 'string', ...names };
  return (name) => (name === 'this' ? element : name === '@key' ? key : name === 'item' ? undefined : outer(name));
}

/** Whether a mustache renders on one line: a variable, or `join` of one, that has no newline. */
function oneLine(node: hbs.AST.MustacheStatement, scope: Scope): boolean {
  const name = (node.path as hbs.AST.PathExpression).original;
  if (!node.params.length && !node.hash) return ALWAYS_SAFE.has(name) || noNewline(scope(name));
  const [list, sep] = node.params;
  if (name !== 'join' || list?.type !== 'PathExpression' || node.params.length !== 2 || sep?.type !== 'StringLiteral') return false;
  return !(sep as hbs.AST.StringLiteral).value.includes('\n') && noNewline(scope((list as hbs.AST.PathExpression).original)?.items as Schema | undefined);
}

/** Whether no value the schema admits contains a newline (conservative). */
function noNewline(schema: Schema | undefined): boolean {
  if (!schema) return false;
  if (safeSchema(schema)) return true;
  if (Array.isArray(schema.enum)) return schema.enum.every((v) => !String(v).includes('\n'));
  if (schema.type !== 'string' || typeof schema.pattern !== 'string') return false;
  const p = schema.pattern;
  if (!p.startsWith('^') || !p.endsWith('$') || p.includes('|') || /\\[sWD]/.test(p)) return false;
  // every negated class must exclude the newline itself
  const negated = p.match(/\[\^(?:\\.|[^\]])*\]/g) ?? [];
  return negated.every((c) => c.includes('\\n'));
}

/** Whether every value the schema admits is a bare shell word. Conservative: unknown is unsafe. */
export function safeSchema(schema: Schema): boolean {
  if (Array.isArray(schema.enum)) return schema.enum.every((v) => typeof v !== 'string' || SAFE_WORD.test(v));
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.every((t) => t === 'integer' || t === 'number' || t === 'boolean' || t === 'null')) return true;
  if (types.length === 1 && types[0] === 'string' && typeof schema.pattern === 'string') return safePattern(schema.pattern);
  return false;
}

/**
 * Whether an anchored regular expression matches only strings of safe characters: every
 * literal and every character class member is safe, no `.`, no negated class, no `\s`/`\S`/
 * `\W`/`\D`. A pattern this scanner does not understand is unsafe.
 */
export function safePattern(source: string): boolean {
  if (!source.startsWith('^') || !source.endsWith('$') || source.endsWith('\\$')) return false;
  const body = source.slice(1, -1);
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === '|' && depth === 0) return false; // `^a|b$`: each side anchored at one end only
    if (c === '\\') {
      const e = body[++i];
      if (e === undefined) return false;
      if (e === 'd' || e === 'w') continue;
      if (/[A-Za-z]/.test(e)) return false; // \s \S \W \D \n \b ...: not plain characters
      if (!SAFE_CHAR.test(e)) return false;
      continue;
    }
    if (c === '[') {
      const end = classEnd(body, i);
      if (end < 0) return false;
      if (!safeClass(body.slice(i + 1, end))) return false;
      i = end;
      continue;
    }
    if (c === '{') {
      const end = body.indexOf('}', i);
      if (end < 0 || !/^\{\d*(,\d*)?\}$/.test(body.slice(i, end + 1))) return false;
      i = end;
      continue;
    }
    if (c === '(' && body[i + 1] === '?') {
      if (body[i + 2] !== ':') return false; // lookarounds: not worth understanding here
      i += 2;
      continue;
    }
    if ('()|+*?'.includes(c)) continue;
    if (c === '.') return false; // any character
    if (!SAFE_CHAR.test(c)) return false; // `^`, `$` inside, spaces, quotes...
  }
  return true;
}

function classEnd(body: string, start: number): number {
  for (let j = start + 1; j < body.length; j++) {
    if (body[j] === '\\') j++;
    else if (body[j] === ']' && j > start + 1) return j;
  }
  return -1;
}

function safeClass(inner: string): boolean {
  if (inner.startsWith('^')) return false;
  for (let i = 0; i < inner.length; i++) {
    let c = inner[i]!;
    if (c === '\\') {
      const e = inner[++i];
      if (e === 'd' || e === 'w') continue;
      if (e === undefined || /[A-Za-z]/.test(e)) return false;
      c = e;
    }
    // a range: both ends lower-case letters, upper-case letters or digits
    if (inner[i + 1] === '-' && i + 2 < inner.length) {
      const range = c + inner[i + 2]!;
      if (!/^([a-z][a-z]|[A-Z][A-Z]|[0-9][0-9])$/.test(range)) return false;
      i += 2;
      continue;
    }
    if (!SAFE_CHAR.test(c)) return false;
  }
  return true;
}
