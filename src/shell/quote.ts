// The one place where values become shell words. Every value interpolated into a remote
// command goes through `quote` (or the `sh` tag, which calls it; the templates' `quote` helper
// too). POSIX sh: single quotes preserve everything except the single quote itself, which is
// closed, escaped and reopened.
//
// Shell is a type: `sh` returns a Shell, and everything that reaches a host as a command
// (a resource's commands and probe, a step, a handler) is a Shell. A string cannot be passed
// where shell is expected, so an unquoted interpolation is a type error, not a review finding.
// `raw` marks a literal of keel's own code (or a role author's own shell) as shell, as it is.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quote one value as a single POSIX shell word. Safe words stay bare unless `always` (the
 * templates' `quote` helper always quotes, so files rendered by earlier versions do not change).
 */
export function quote(value: string | number | boolean, { always = false } = {}): string {
  const s = String(value);
  if (s.includes('\0')) throw new TypeError('a shell word cannot contain a NUL byte');
  if (!always && s !== '' && SAFE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A fragment of shell that is safe as it is: built by `sh`, or a literal of keel's code. */
export class Shell {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Mark a literal of keel's own code (or an author's shell, taken as written) as shell. */
export function raw(text: string | Shell): Shell {
  return text instanceof Shell ? text : new Shell(text);
}

type Interpolable = string | number | boolean | Shell | readonly (string | number | Shell)[];

/**
 * Tagged template: literal parts are keel's shell, every interpolated value is quoted
 * (arrays become several quoted words; Shell fragments are inserted as they are).
 */
export function sh(strings: TemplateStringsArray, ...values: Interpolable[]): Shell {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += word(v) + (strings[i + 1] ?? '');
  });
  return new Shell(out);
}

/** Shell fragments one after the other (newline-separated by default). */
export function joinShell(parts: readonly Shell[], separator = '\n'): Shell {
  return new Shell(parts.map((p) => p.text).join(separator));
}

function word(v: Interpolable): string {
  if (v instanceof Shell) return v.text;
  if (Array.isArray(v)) return v.map((x) => word(x as Interpolable)).join(' ');
  return quote(v as string | number | boolean);
}
