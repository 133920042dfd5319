// What Ansible's INI plugin makes of a value: `ast.literal_eval(text)`, and the text itself when
// that fails (plugins/inventory/ini.py, _parse_value). keel types INI values its own way (see
// ini.ts); this tells where Ansible reads the same text differently, so that the difference is
// named (keel inventory --explain) instead of silent.
//
// Covered: ints (decimal, 0x, 0o, 0b, underscores), floats, strings (quotes, prefixes r/u,
// adjacent literals, the common escapes), True/False/None, lists, tuples, dicts, unary +/-,
// a trailing `# comment`. What Ansible would turn into something JSON cannot hold (complex
// numbers, sets, bytes) is reported as unknown rather than guessed.

export type PyLiteral = { kind: 'value'; value: unknown } | { kind: 'not-a-literal' } | { kind: 'unknown' };

class NotLiteral extends Error {}
class Unknown extends Error {}

export function pyLiteralEval(text: string): PyLiteral {
  const p = new Parser(text.replace(/^[ \t]+/, ''));
  try {
    const value = p.expression(true);
    p.skipSpace(true);
    if (!p.done()) throw new NotLiteral();
    return { kind: 'value', value };
  } catch (err) {
    if (err instanceof NotLiteral) return { kind: 'not-a-literal' };
    if (err instanceof Unknown) return { kind: 'unknown' };
    throw err;
  }
}

/** Ansible's reading of an INI value: the literal's value, else the text as it is. */
export function ansibleIniValue(text: string): { known: boolean; value: unknown } {
  const r = pyLiteralEval(text);
  if (r.kind === 'value') return { known: true, value: r.value };
  return { known: r.kind === 'not-a-literal', value: text };
}

const DIGITS = '[0-9](?:_?[0-9])*';
const NUMBER = new RegExp(
  `^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:(?:${DIGITS})?\\.${DIGITS}|${DIGITS}\\.?)(?:[eE][+-]?${DIGITS})?[jJ]?)`,
);
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const STRING_START = /^([rRuUbBfF]{0,2})(['"])/;

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  done(): boolean {
    return this.i >= this.s.length;
  }

  /** Spaces (and, inside brackets, newlines); a `#` comment runs to the end of the line. */
  skipSpace(newlines: boolean): void {
    for (;;) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t' || c === '\f' || (newlines && (c === '\n' || c === '\r'))) this.i++;
      else if (c === '\\' && this.s[this.i + 1] === '\n') this.i += 2;
      else if (c === '#') while (this.i < this.s.length && this.s[this.i] !== '\n') this.i++;
      else return;
    }
  }

  private peek(): string | undefined {
    return this.s[this.i];
  }

  /** A bare `1, 2` is a tuple at the top level, as in Python. */
  expression(top: boolean): unknown {
    const first = this.signed(!top);
    this.skipSpace(!top);
    if (!top || this.peek() !== ',') return first;
    const items = [first];
    while (this.peek() === ',') {
      this.i++;
      this.skipSpace(false);
      if (this.done()) break;
      items.push(this.signed(false));
      this.skipSpace(false);
    }
    return items;
  }

  private signed(nl: boolean): unknown {
    this.skipSpace(nl);
    const c = this.peek();
    if (c === '-' || c === '+') {
      this.i++;
      this.skipSpace(nl);
      const v = this.atom(nl); // one sign only: literal_eval refuses --1
      if (typeof v !== 'number') throw new NotLiteral();
      const r = c === '-' ? -v : v;
      this.skipSpace(nl);
      if (this.peek() === '+' || this.peek() === '-') throw new Unknown(); // 1+2j: complex
      return r;
    }
    const v = this.atom(nl);
    this.skipSpace(nl);
    if ((this.peek() === '+' || this.peek() === '-') && typeof v === 'number') throw new Unknown();
    return v;
  }

  private atom(nl: boolean): unknown {
    const rest = this.s.slice(this.i);
    const c = rest[0];
    if (c === undefined) throw new NotLiteral();
    if (c === '[') return this.sequence(']');
    if (c === '(') {
      const items = this.sequence(')', true);
      return items;
    }
    if (c === '{') return this.mapping();
    const str = STRING_START.exec(rest);
    if (str) return this.strings(nl);
    const num = NUMBER.exec(rest);
    if (num && /[0-9]/.test(num[0]) && !/^[0-9A-Za-z_.]/.test(rest.slice(num[0].length))) {
      this.i += num[0].length;
      return number(num[0]);
    }
    const name = NAME.exec(rest);
    if (name) {
      this.i += name[0].length;
      if (name[0] === 'True') return true;
      if (name[0] === 'False') return false;
      if (name[0] === 'None') return null;
    }
    throw new NotLiteral();
  }

  /** `[a, b]` or `(a, b)`; `(a)` is a itself, `(a,)` and `()` are tuples. */
  private sequence(close: string, paren = false): unknown {
    this.i++;
    const items: unknown[] = [];
    let comma = false;
    for (;;) {
      this.skipSpace(true);
      if (this.peek() === close) {
        this.i++;
        return paren && items.length === 1 && !comma ? items[0] : items;
      }
      if (items.length > 0) {
        if (this.peek() !== ',') throw new NotLiteral();
        this.i++;
        comma = true;
        this.skipSpace(true);
        if (this.peek() === close) continue;
      }
      items.push(this.signed(true));
    }
  }

  private mapping(): unknown {
    this.i++;
    const out: Record<string, unknown> = {};
    let first = true;
    for (;;) {
      this.skipSpace(true);
      if (this.peek() === '}') {
        this.i++;
        return out;
      }
      if (!first) {
        if (this.peek() !== ',') throw new NotLiteral();
        this.i++;
        this.skipSpace(true);
        if (this.peek() === '}') continue;
      }
      const key = this.signed(true);
      this.skipSpace(true);
      if (this.peek() !== ':') throw first ? new Unknown() : new NotLiteral(); // {1, 2}: a set
      this.i++;
      const value = this.signed(true);
      if (key !== null && typeof key === 'object') throw new NotLiteral(); // unhashable
      out[pyKey(key)] = value;
      first = false;
    }
  }

  /** One or more adjacent string literals, concatenated. */
  private strings(nl: boolean): string {
    let out = '';
    for (;;) {
      const m = STRING_START.exec(this.s.slice(this.i));
      if (!m) return out;
      const prefix = m[1]!.toLowerCase();
      if (prefix.includes('f')) throw new NotLiteral(); // an f-string is not a literal
      if (prefix.includes('b')) throw new Unknown(); // bytes
      this.i += m[0].length;
      const q = m[2]!;
      const triple = this.s.startsWith(q + q, this.i);
      if (triple) this.i += 2;
      const end = triple ? q.repeat(3) : q;
      let text = '';
      for (;;) {
        if (this.done()) throw new NotLiteral();
        if (this.s.startsWith(end, this.i)) {
          this.i += end.length;
          break;
        }
        const ch = this.s[this.i]!;
        if (ch === '\n' && !triple) throw new NotLiteral();
        if (ch === '\\') {
          const [piece, used] = prefix.includes('r') ? [this.s.slice(this.i, this.i + 2), 2] : escape(this.s, this.i);
          text += piece;
          this.i += used;
        } else {
          text += ch;
          this.i++;
        }
      }
      out += text;
      this.skipSpace(nl);
    }
  }
}

function number(text: string): number {
  if (/[jJ]$/.test(text)) throw new Unknown();
  const t = text.replace(/_/g, '');
  let v: number;
  if (/^0[xX]/.test(t)) v = parseInt(t.slice(2), 16);
  else if (/^0[oO]/.test(t)) v = parseInt(t.slice(2), 8);
  else if (/^0[bB]/.test(t)) v = parseInt(t.slice(2), 2);
  else if (/[.eE]/.test(t)) v = Number(t);
  else {
    if (/^0+[1-9]/.test(t)) throw new NotLiteral(); // 007: "leading zeros ... are not permitted"
    v = Number(t);
  }
  if (!Number.isSafeInteger(v) && Number.isInteger(v)) throw new Unknown(); // beyond what JSON keeps exactly
  return v;
}

/** Python's str() of a dict key, as JSON shows it. */
function pyKey(k: unknown): string {
  if (k === true) return 'true';
  if (k === false) return 'false';
  if (k === null) return 'null';
  return String(k);
}

const SIMPLE: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };

function escape(s: string, i: number): [string, number] {
  const c = s[i + 1];
  if (c === undefined) throw new NotLiteral();
  if (c in SIMPLE) return [SIMPLE[c]!, 2];
  const hex = (n: number) => {
    const h = s.slice(i + 2, i + 2 + n);
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) throw new NotLiteral();
    return [String.fromCodePoint(parseInt(h, 16)), 2 + n] as [string, number];
  };
  if (c === 'x') return hex(2);
  if (c === 'u') return hex(4);
  if (c === 'U') return hex(8);
  const oct = /^[0-7]{1,3}/.exec(s.slice(i + 1));
  if (oct) return [String.fromCharCode(parseInt(oct[0], 8)), 1 + oct[0].length];
  if (c === 'N') throw new Unknown();
  return ['\\' + c, 2]; // an unknown escape stays as written
}
