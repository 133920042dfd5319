// The one place where values become shell words. Every value interpolated into a remote
// command goes through `quote` (or the `sh` tag, which calls it). POSIX sh: single quotes
// preserve everything except the single quote itself, which is closed, escaped and reopened.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one value as a single POSIX shell word. */
export function quote(value: string | number | boolean): string {
  const s = String(value);
  if (s.includes('\0')) throw new TypeError('a shell word cannot contain a NUL byte');
  if (s !== '' && SAFE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A fragment of shell that is already safe (built by `sh` or a literal in keel's code). */
export class Shell {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Mark a literal of keel's own code as shell, unquoted. Never pass user data here. */
export function raw(text: string): Shell {
  return new Shell(text);
}

type Interpolable = string | number | boolean | Shell | readonly (string | number | Shell)[];

/**
 * Tagged template: literal parts are keel's shell, every interpolated value is quoted
 * (arrays become several quoted words; Shell fragments are inserted as they are).
 */
export function sh(strings: TemplateStringsArray, ...values: Interpolable[]): string {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += word(v) + (strings[i + 1] ?? '');
  });
  return out;
}

function word(v: Interpolable): string {
  if (v instanceof Shell) return v.text;
  if (Array.isArray(v)) return v.map((x) => word(x as Interpolable)).join(' ');
  return quote(v as string | number | boolean);
}
