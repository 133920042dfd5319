// Every value that came from the vault is masked in everything keel prints or logs.
// The Redactor is built once per run from the decrypted secrets and passed to every sink.

export const MASK = '******';

/** A secret this long or longer is masked wherever it appears; a shorter one only where it
 *  stands alone (not inside a word: `pass` must not turn "password" into "******word"). */
export const SHORT_SECRET = 8;
/** Where keel cuts a long line: a secret cut there is masked by what is left of it. */
const CUTS = ['...', '…'];
/** The shortest part of a secret that is masked when a cut leaves only that much. */
const MIN_PREFIX = 4;

export class Redactor {
  private secrets: string[] = [];
  private pattern: RegExp | null = null;

  /** Register secret values (strings; other scalars are stringified). Short ones are ignored
   *  only below 3 characters, which would mask too much text to be useful. Each line of a
   *  multi-line secret (a private key) is one too: output streamed line by line holds it so. */
  add(values: Iterable<unknown>): this {
    const keep = (s: string) => {
      if (s.length >= 3 && !this.secrets.includes(s)) this.secrets.push(s);
    };
    for (const v of values)
      collectStrings(v, (s) => {
        keep(s);
        if (s.includes('\n')) for (const line of s.split('\n')) keep(line.trim());
      });
    // Longest first so a secret that contains another is masked whole.
    this.secrets.sort((a, b) => b.length - a.length);
    this.pattern = this.secrets.length ? new RegExp(this.secrets.map(alternative).join('|'), 'gu') : null;
    return this;
  }

  get size(): number {
    return this.secrets.length;
  }

  mask(text: string): string {
    return this.pattern ? text.replace(this.pattern, MASK) : text;
  }

  /** A JSON-like value with every secret occurrence masked in its strings. Parts with
   *  nothing to mask are the value's own (not copied): a run's log and report pass thousands
   *  of events through here, and most runs hold no secret in any of them. */
  maskValue<T>(value: T): T {
    if (!this.pattern) return value;
    if (typeof value === 'string') return this.mask(value) as T;
    if (Array.isArray(value)) {
      let out: unknown[] | undefined;
      value.forEach((v, i) => {
        const m = this.maskValue(v);
        if (m !== v) (out ??= value.slice())[i] = m;
      });
      return (out ?? value) as T;
    }
    if (value && typeof value === 'object') {
      let out: Record<string, unknown> | undefined;
      for (const [k, v] of Object.entries(value)) {
        const m = this.maskValue(v);
        if (m !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = m;
      }
      return (out ?? value) as T;
    }
    return value;
  }

  /** True if the text contains any secret (for tests and assertions). */
  leaks(text: string): boolean {
    return this.pattern ? new RegExp(this.pattern.source, 'u').test(text) : false;
  }
}

function collectStrings(v: unknown, emit: (s: string) => void): void {
  if (v === null || v === undefined) return;
  if (typeof v === 'string') emit(v);
  else if (typeof v === 'number' || typeof v === 'bigint') emit(String(v));
  else if (Array.isArray(v)) v.forEach((x) => collectStrings(x, emit));
  else if (typeof v === 'object') Object.values(v).forEach((x) => collectStrings(x, emit));
}

/** How one secret is matched: whole and anywhere when long, as a whole word when short; and a
 *  long one also by a prefix that a cut (`...`) ends. */
function alternative(secret: string): string {
  const whole = escapeRegExp(secret);
  if (secret.length < SHORT_SECRET) return `(?<![\\p{L}\\p{N}])${whole}(?![\\p{L}\\p{N}])`;
  const prefixes: string[] = [];
  for (let n = secret.length - 1; n >= MIN_PREFIX; n--) prefixes.push(escapeRegExp(secret.slice(0, n)));
  const cut = `(?:${prefixes.join('|')})(?=${CUTS.map(escapeRegExp).join('|')})`;
  return `${whole}|${cut}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
