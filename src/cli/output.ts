// Where commands' results go. Commands return values; printing happens here, through the
// redactor, so no command writes to stdout/stderr directly.
import { Redactor } from '../report/redact.js';

export interface Output {
  redactor: Redactor;
  /** A line for a person (stdout). */
  line(text: string): void;
  /** A diagnostic line (stderr). */
  warn(text: string): void;
  /** One JSON document on stdout. */
  json(value: unknown): void;
  readonly isTTY: boolean;
}

export function consoleOutput(redactor = new Redactor()): Output {
  return {
    redactor,
    line: (t) => process.stdout.write(redactor.mask(t) + '\n'),
    warn: (t) => process.stderr.write(redactor.mask(t) + '\n'),
    json: (v) => process.stdout.write(JSON.stringify(redactor.maskValue(v), null, 2) + '\n'),
    isTTY: Boolean(process.stdout.isTTY),
  };
}
