// Handlebars on the controller, strict: a missing variable is an error that names the file
// and the line. No HTML escaping: keel renders config files, not web pages.
import Handlebars from 'handlebars';
import { createHash } from 'node:crypto';
import { quote } from '../shell/quote.js';
import { ConfigError, ConfigErrors, throwIfAny, type SourceLocation } from '../errors.js';
import type { Vars } from '../inventory/types.js';
import { precompiledTemplate } from './template-precompiled.js';
import { scanPlain, type PlainTemplate } from './template-quick.js';

const hb = Handlebars.create();
/** keel's Handlebars, with its helpers (tests compare precompiled and compiled templates). */
export const keelHandlebars = hb;
hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
hb.registerHelper('ne', (a: unknown, b: unknown) => a !== b);
hb.registerHelper('not', (a: unknown) => !a);
hb.registerHelper('and', (...args: unknown[]) => args.slice(0, -1).every(Boolean));
hb.registerHelper('or', (...args: unknown[]) => args.slice(0, -1).some(Boolean));
hb.registerHelper('default', (v: unknown, d: unknown) => (v === undefined || v === null || v === '' ? d : v));
hb.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ' ') : ''));
hb.registerHelper('json', (v: unknown) => JSON.stringify(v));
hb.registerHelper('dirname', (p: unknown) => String(p).replace(/\/+[^/]*\/*$/, '') || '/');
hb.registerHelper('basename', (p: unknown) => String(p).replace(/\/+$/, '').split('/').pop() ?? '');
hb.registerHelper('quote', (v: unknown) => quote(String(v), { always: true }));
// `lookup` with a default in strict mode: {{get vars "name" "fallback"}} is rarely needed;
// roles use role defaults instead.

// {{add app_bind_port 1}}: integer arithmetic (the second slot's port).
hb.registerHelper('add', (a: unknown, b: unknown) => Number(a) + Number(b));
// {{#each (array "a" "b")}}: a literal list (role app's two slots).
hb.registerHelper('array', (...args: unknown[]) => args.slice(0, -1));
hb.registerHelper('includes', (list: unknown, item: unknown) => Array.isArray(list) && list.includes(item));
// {{#each (group lb_backend_group)}}: the hosts of an inventory group ({name, address,
// private_address}), from the render context's `group_members` (compile.ts); an unknown group
// is an error, not an empty list.
hb.registerHelper('group', function (this: unknown, name: unknown, options: { data?: { root?: Vars } }) {
  const members = (options.data?.root?.group_members ?? {}) as Record<string, unknown[]>;
  if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(members, name)) {
    throw new Error(`no group "${String(name)}" in the inventory (groups: ${Object.keys(members).join(', ') || 'none'})`);
  }
  return members[name];
});
// {{#each (range 1 rq_workers)}}: the integers from..to (empty when to < from; at most 1000).
hb.registerHelper('range', (from: unknown, to: unknown) => {
  const a = Number(from);
  const b = Math.min(Number(to), a + 999);
  return Number.isInteger(a) && Number.isInteger(b) && b >= a ? Array.from({ length: b - a + 1 }, (_, i) => a + i) : [];
});

/** Names a role declares, set on a render context: known even when unset (then falsy). */
export const DECLARED = Symbol('declared variables');

interface Compiled {
  /** The paths the template reads that must exist (checkNames). */
  checks: NameCheck[];
  /** A plain template (text and {{path}} only), which `interpolate` renders without
   *  compiling: most role values and many config files are plain, and Handlebars' compiler
   *  costs ~10 ms per template on a cold start. Null when `fn` renders it. */
  plain: PlainTemplate | null;
  fn: HandlebarsTemplateDelegate | null;
}

const cache = new Map<string, Compiled>();
const OPTIONS = { strict: true, noEscape: true };

/** Render a template string. `where` is the file (and the line where the string starts). */
export function render(source: string, context: Vars, where: SourceLocation): string {
  if (!source.includes('{{')) return source;
  let entry = cache.get(source);
  try {
    if (!entry) {
      entry = analyzed(source);
      cache.set(source, entry);
    }
    checkNames(entry.checks, context, where);
    return entry.fn ? entry.fn(context) : interpolate(entry.plain!, context);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw templateError(err, where);
  }
}

/** A plain source is read by scanPlain; a built-in one comes precompiled with its checks, as
 *  the build found them (Handlebars' parser took half of a `keel plan`'s compile on the demo's
 *  stack); any other is parsed and compiled here, as Handlebars does when first called. */
function analyzed(source: string): Compiled {
  const quick = scanPlain(source);
  if (quick) return { checks: plainChecks(quick), plain: quick, fn: null };
  const pre = precompiledTemplate(sourceKey(source));
  if (pre) return { checks: pre.checks, plain: null, fn: hb.template(pre.spec()) };
  const ast = hb.parse(source);
  if (isPlain(ast)) {
    const plain = plainOf(ast);
    return { checks: plainChecks(plain), plain, fn: null };
  }
  return { checks: namesToCheck(ast), plain: null, fn: hb.compile(source, OPTIONS) };
}

/** What namesToCheck gives for a plain template: each path once, in the template's order. */
function plainChecks(plain: PlainTemplate): NameCheck[] {
  const checks: NameCheck[] = [];
  const seen = new Set<string>();
  for (const p of plain.paths) {
    if (seen.has(p.original)) continue;
    seen.add(p.original);
    checks.push([p.original, p.parts, p.line, p.column]);
  }
  return checks;
}

/** Handlebars' AST of a plain template (isPlain) as its parts: comments print nothing. */
function plainOf(ast: hbs.AST.Program): PlainTemplate {
  const texts = [''];
  const paths: PlainTemplate['paths'] = [];
  for (const st of ast.body) {
    if (st.type === 'ContentStatement') texts[texts.length - 1] += (st as hbs.AST.ContentStatement).value;
    else if (st.type === 'MustacheStatement') {
      const p = (st as hbs.AST.MustacheStatement).path as hbs.AST.PathExpression;
      paths.push({ original: p.original, parts: p.parts, line: p.loc.start.line, column: p.loc.start.column });
      texts.push('');
    }
  }
  return { texts, paths };
}

/** The key of a template's source among the precompiled ones. */
export function sourceKey(source: string): string {
  return createHash('sha1').update(source).digest('base64');
}

/** Handlebars' precompiled spec (JavaScript) for `source`, the paths it must check and the
 *  names it reads; null when keel renders it without compiling (no `{{`, or plain: isPlain). */
export function precompileSource(source: string): { spec: string; checks: NameCheck[]; names: string[] } | null {
  if (!source.includes('{{')) return null;
  let ast: hbs.AST.Program;
  try {
    ast = hb.parse(source);
  } catch {
    return null; // a syntax error is reported where the template is rendered
  }
  if (isPlain(ast)) return null;
  // typed as the spec object, returned as its source
  return { spec: hb.precompile(source, OPTIONS) as unknown as string, checks: namesToCheck(ast), names: namesIn(ast) };
}

/** Text, comments and `{{a.b}}` lookups only: no helpers, blocks, partials, @data or ../ */
function isPlain(ast: hbs.AST.Program): boolean {
  return ast.body.every((st) => {
    if (st.type === 'ContentStatement' || st.type === 'CommentStatement') return true;
    if (st.type !== 'MustacheStatement') return false;
    const m = st as hbs.AST.MustacheStatement;
    const p = m.path as hbs.AST.PathExpression;
    return (
      m.params.length === 0 &&
      !m.hash &&
      p.type === 'PathExpression' &&
      !p.data &&
      p.depth === 0 &&
      p.parts.length > 0 &&
      !/^(this\b|\.)/.test(p.original) &&
      !BUILTIN_HELPERS.has(p.parts[0]!) &&
      hb.helpers[p.parts[0]!] === undefined
    );
  });
}

/** What Handlebars' strict, noEscape output is for a plain template: every part of a path
 *  must exist (else the same "not defined" error), own properties only (Handlebars hides
 *  inherited ones), null and undefined print as nothing, anything else as String(value). */
function interpolate(plain: PlainTemplate, context: Vars): string {
  let out = plain.texts[0]!;
  // A name used again in the same template prints what it printed the first time: the
  // context is not changed while a template renders, and its lookups go through proxies.
  const printed = new Map<string, string>();
  for (const [i, path] of plain.paths.entries()) {
    let text = printed.get(path.original);
    if (text === undefined) {
      let cur: unknown = context;
      for (const part of path.parts) {
        if (cur === null || (typeof cur !== 'object' && typeof cur !== 'function') || !(part in (cur as object))) {
          throw new Error(`"${part}" not defined in ${String(cur)} - ${path.line}:${path.column}`);
        }
        cur = Object.prototype.hasOwnProperty.call(cur, part) ? (cur as Vars)[part] : undefined;
      }
      text = cur !== null && cur !== undefined ? String(cur) : '';
      printed.set(path.original, text);
    }
    out += text + plain.texts[i + 1]!;
  }
  return out;
}

const BUILTIN_HELPERS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'log']);

/** A path a template reads that must exist: its text, its parts, and where it starts in the
 *  template (Handlebars' line from 1 and column from 0). Plain data, so that the build can
 *  write a built-in template's checks next to its precompiled spec. */
export type NameCheck = [original: string, parts: string[], line: number, column: number];

/**
 * Handlebars' strict mode catches `{{typo}}` but not `{{#if typo}}` or `(eq typo "x")`, which
 * would silently be false. Every variable a template names must exist (or be declared by a
 * role); inside `#each`/`#with` the context changes, so names there are not checked. These
 * are the paths to check, in the template's order, each once.
 */
export function namesToCheck(ast: hbs.AST.Program): NameCheck[] {
  const checks: NameCheck[] = [];
  const program = (p: hbs.AST.Program | undefined, scoped: boolean): void => p?.body.forEach((st) => statement(st, scoped));
  const statement = (st: hbs.AST.Statement, scoped: boolean): void => {
    if (st.type === 'MustacheStatement') call(st as hbs.AST.MustacheStatement, scoped);
    else if (st.type === 'BlockStatement') {
      const b = st as hbs.AST.BlockStatement;
      call(b, scoped);
      const name = (b.path as hbs.AST.PathExpression).original;
      program(b.program, scoped || name === 'each' || name === 'with');
      program(b.inverse, scoped);
    }
  };
  const call = (node: { path: hbs.AST.PathExpression | hbs.AST.Literal; params: hbs.AST.Expression[]; hash?: hbs.AST.Hash }, scoped: boolean): void => {
    const path = node.path as hbs.AST.PathExpression;
    const isHelper =
      node.params.length > 0 || (node.hash?.pairs.length ?? 0) > 0 || BUILTIN_HELPERS.has(path.original) || hb.helpers[path.original] !== undefined;
    if (!isHelper && path.type === 'PathExpression') check(path, scoped);
    node.params.forEach((e) => expr(e, scoped));
    node.hash?.pairs.forEach((pair) => expr(pair.value, scoped));
  };
  const expr = (e: hbs.AST.Expression, scoped: boolean): void => {
    if (e.type === 'SubExpression') call(e as hbs.AST.SubExpression, scoped);
    else if (e.type === 'PathExpression') check(e as hbs.AST.PathExpression, scoped);
  };
  // A path checked once needs no second check: the context does not change meanwhile.
  const seen = new Set<string>();
  const check = (p: hbs.AST.PathExpression, scoped: boolean): void => {
    if (scoped || p.data || p.depth > 0 || p.parts.length === 0 || seen.has(p.original) || /^this\b/.test(p.original)) return;
    seen.add(p.original);
    checks.push([p.original, p.parts, p.loc.start.line, p.loc.start.column]);
  };
  program(ast, false);
  return checks;
}

/** The first of `checks` whose path the context lacks is an error at its line and column. */
function checkNames(checks: NameCheck[], context: Vars, where: SourceLocation): void {
  const declared = (context as Record<symbol, unknown>)[DECLARED] as Set<string> | undefined;
  for (const [original, parts, line, column] of checks) {
    let cur: unknown = context;
    for (const [i, part] of parts.entries()) {
      if (cur === null || cur === undefined || typeof cur !== 'object') break; // a value, not a container: nothing to check
      if (!(part in (cur as Vars))) {
        if (i === 0 && declared?.has(part)) break;
        throw new ConfigError(`variable "${original}" is not defined`, { file: where.file, line: (where.line ?? 1) + line - 1, column: column + 1 });
      }
      // The last part's value is not needed: not reading it keeps a name only checked (in a
      // branch not taken) from counting as read (compile-reuse.ts).
      if (i < parts.length - 1) cur = (cur as Vars)[part];
    }
  }
}

/** Adds to `into` the names referencedNames finds in every string inside `value` (strings,
 *  lists and mappings, at any depth). */
export function collectReferencedNames(value: unknown, into: Set<string>): Set<string> {
  if (typeof value === 'string') referencedNames(value).forEach((n) => into.add(n));
  else if (Array.isArray(value)) value.forEach((v) => collectReferencedNames(v, into));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => collectReferencedNames(v, into));
  return into;
}

/** Every variable name a template refers to (the first part of each path, helpers' arguments
 *  and blocks included; `this` and @data excluded). Used to tell a variable nothing reads. */
export function referencedNames(source: string): string[] {
  if (!source.includes('{{')) return [];
  let names = namesCache.get(source);
  if (names) return names;
  const quick = scanPlain(source);
  if (quick) names = [...new Set(quick.paths.map((p) => p.parts[0]!))];
  else {
    try {
      names = precompiledTemplate(sourceKey(source))?.names ?? namesIn(hb.parse(source));
    } catch {
      return []; // a syntax error is reported where the template is rendered
    }
  }
  namesCache.set(source, names);
  return names;
}

const namesCache = new Map<string, string[]>();

function namesIn(ast: hbs.AST.Program): string[] {
  const names = new Set<string>();
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(visit);
    const n = node as { type?: string } & Record<string, unknown>;
    if (n.type === 'PathExpression') {
      const p = n as unknown as hbs.AST.PathExpression;
      if (!p.data && p.parts.length && !/^this\b/.test(p.original)) names.add(p.parts[0]!);
      return;
    }
    for (const [k, v] of Object.entries(n)) if (k !== 'loc') visit(v);
  };
  visit(ast);
  return [...names];
}

/** The names a `when:` expression refers to (written with or without braces). */
export function whenNames(expr: string): string[] {
  const inner = expr.trim().replace(/^\{\{\s*([\s\S]*?)\s*\}\}$/, '$1');
  return referencedNames(`{{#if ${/\s/.test(inner) && !inner.startsWith('(') ? `(${inner})` : inner}}}{{/if}}`);
}

const WHOLE = /^\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}$/;

/** Render a value from role.yaml. A string that is exactly one `{{ var }}` keeps the
 *  variable's type (a list stays a list, a number a number). */
export function renderValue(value: unknown, context: Vars, where: SourceLocation): unknown {
  if (typeof value === 'string') {
    const m = WHOLE.exec(value);
    if (m) return lookupPath(context, m[1]!, where);
    return render(value, context, where);
  }
  if (Array.isArray(value)) return value.map((v) => renderValue(v, context, where));
  if (value && typeof value === 'object') {
    const out: Vars = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderValue(v, context, where);
    return out;
  }
  return value;
}

export function lookupPath(context: Vars, path: string, where: SourceLocation): unknown {
  let cur: unknown = context;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !(part in (cur as Vars))) {
      const env = typeof context.env === 'string' ? context.env : '<env>';
      const hint = path.startsWith('secrets.')
        ? `the vault of ${env} has no "${path.slice(8)}": keel secrets set ${env} ${path.slice(8)} (or keel secrets init ${env} first)`
        : undefined;
      throw new ConfigError(`variable "${path}" is not defined`, where, { hint });
    }
    cur = (cur as Vars)[part];
  }
  return cur;
}

/** Evaluate a `when:` condition: a Handlebars expression such as `nginx_tls`,
 *  `eq app_server "gunicorn"` or `(not maintenance)`, with or without the braces. */
export function evaluateWhen(expr: string | boolean, context: Vars, where: SourceLocation): boolean {
  if (typeof expr === 'boolean') return expr;
  return render(whenTemplate(expr), context, where) === 'true';
}

/** The template evaluateWhen renders for a `when:` expression. */
export function whenTemplate(expr: string): string {
  const inner = expr.trim().replace(/^\{\{\s*([\s\S]*?)\s*\}\}$/, '$1');
  const test = /\s/.test(inner) && !inner.startsWith('(') ? `(${inner})` : inner;
  return `{{#if ${test}}}true{{/if}}`;
}

/**
 * Variables may refer to other variables (`app_root: "/home/{{app_user}}/webapp"`). Resolve
 * every string until nothing changes; a cycle or a missing variable is an error naming where
 * the variable was defined.
 */
export function resolveVars(vars: Vars, extra: Vars, locations: Record<string, SourceLocation> = {}, fallback: SourceLocation): Vars {
  const resolved: Vars = {};
  const state = new Map<string, 'busy' | 'done'>();
  const context: Vars = new Proxy(
    {},
    {
      has: (_t, k) => typeof k === 'string' && (k in vars || k in extra),
      get: (_t, k) => {
        if (typeof k !== 'string') return undefined;
        if (k in extra) return extra[k];
        if (!(k in vars)) return undefined;
        return resolveOne(k);
      },
      ownKeys: () => [...new Set([...Object.keys(vars), ...Object.keys(extra)])],
      getOwnPropertyDescriptor: (_t, k) => (typeof k === 'string' && (k in vars || k in extra) ? { enumerable: true, configurable: true } : undefined),
    },
  );
  function resolveOne(name: string): unknown {
    if (state.get(name) === 'done') return resolved[name];
    const where = locations[name] ?? fallback;
    if (state.get(name) === 'busy') throw new ConfigError(`variable "${name}" refers to itself (through other variables)`, where);
    state.set(name, 'busy');
    const value = renderValue(vars[name], context, where);
    resolved[name] = value;
    state.set(name, 'done');
    return value;
  }
  // Report every variable that cannot be resolved, not just the first.
  const errors: ConfigError[] = [];
  for (const name of Object.keys(vars)) {
    try {
      resolveOne(name);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (!errors.some((e) => e.message === err.message)) errors.push(err);
      state.set(name, 'done');
    }
  }
  throwIfAny(errors);
  return { ...resolved, ...extra };
}

function templateError(err: unknown, where: SourceLocation): ConfigError {
  const msg = err instanceof Error ? err.message : String(err);
  // Handlebars: `"app_port" not defined in [object Object] - 3:14` or a parse error
  // "Parse error on line 3:".
  const strict = /^"?(.+?)"? not defined in .* - (\d+):(\d+)/.exec(msg);
  if (strict) {
    const line = (where.line ?? 1) + Number(strict[2]) - 1;
    return new ConfigError(`variable "${strict[1]}" is not defined`, { file: where.file, line, column: Number(strict[3]) + 1 });
  }
  const parse = /Parse error on line (\d+):\n([\s\S]*)/.exec(msg);
  if (parse) {
    const line = (where.line ?? 1) + Number(parse[1]) - 1;
    return new ConfigError(`template syntax error: ${parse[2]!.split('\n').slice(-1)[0]}`, { file: where.file, line });
  }
  return new ConfigError(`template error: ${msg}`, where, { cause: err });
}
