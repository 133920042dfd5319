// Remote output as lines: a process's stdout or stderr arrives in chunks that cut lines (and
// UTF-8 characters) anywhere; secrets are masked line by line, so a line is whole first.
import { StringDecoder } from 'node:string_decoder';

/** Longest partial line held back: past it, the text so far is a line of its own. */
const MAX_LINE = 64 * 1024;

export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.partial + this.decoder.write(chunk);
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) this.onLine(l.replace(/\r$/, ''));
    if (this.partial.length > MAX_LINE) {
      this.onLine(this.partial);
      this.partial = '';
    }
  }

  /** The last line, if it had no newline. */
  flush(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest) this.onLine(rest.replace(/\r$/, ''));
  }
}

/** The last `max` characters of what was appended (a command's output kept for --output json). */
export class Tail {
  private text = '';
  constructor(private readonly max = 1024 * 1024) {}
  add(line: string): void {
    this.text += line + '\n';
    if (this.text.length > this.max * 2) this.text = this.text.slice(-this.max);
  }
  toString(): string {
    return this.text.length > this.max ? this.text.slice(-this.max) : this.text;
  }
}
