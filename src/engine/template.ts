// Handlebars on the controller, strict: a missing variable is an error that names the file
// and the line. No HTML escaping: keel renders config files, not web pages.
import Handlebars from 'handlebars';
import { ConfigError, formatLocation, type SourceLocation } from '../errors.js';
import type { Vars } from '../inventory/types.js';

const hb = Handlebars.create();
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
hb.registerHelper('quote', (v: unknown) => `'${String(v).replace(/'/g, `'\\''`)}'`);
// `lookup` with a default in strict mode: {{get vars "name" "fallback"}} is rarely needed;
// roles use role defaults instead.

const cache = new Map<string, HandlebarsTemplateDelegate>();

/** Render a template string. `where` is the file (and the line where the string starts). */
export function render(source: string, context: Vars, where: SourceLocation): string {
  if (!source.includes('{{')) return source;
  let fn = cache.get(source);
  if (!fn) {
    fn = hb.compile(source, { strict: true, noEscape: true });
    cache.set(source, fn);
  }
  try {
    return fn(context);
  } catch (err) {
    throw templateError(err, where);
  }
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
  const inner = expr.trim().replace(/^\{\{\s*([\s\S]*?)\s*\}\}$/, '$1');
  const test = /\s/.test(inner) && !inner.startsWith('(') ? `(${inner})` : inner;
  return render(`{{#if ${test}}}true{{/if}}`, context, where) === 'true';
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
      getOwnPropertyDescriptor: (_t, k) =>
        typeof k === 'string' && (k in vars || k in extra) ? { enumerable: true, configurable: true } : undefined,
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
  for (const name of Object.keys(vars)) resolveOne(name);
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

export { formatLocation };
