// Where commands' results go. Commands return values; printing happens here, through the
// redactor, so no command writes to stdout/stderr directly.
import { writeJson } from './json-stream.js';
import { Redactor } from './redact.js';

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
  // `keel provision ... | head`: once the reader has gone, writes are dropped. The run goes on
  // and its exit code keeps its meaning (an EPIPE is not a failed run).
  const gone = { stdout: false, stderr: false };
  for (const name of ['stdout', 'stderr'] as const) {
    process[name].on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      gone[name] = true;
    });
  }
  const write = (name: 'stdout' | 'stderr', text: string) => {
    if (!gone[name]) process[name].write(text);
  };
  return {
    redactor,
    line: (t) => write('stdout', redactor.mask(t) + '\n'),
    warn: (t) => write('stderr', redactor.mask(t) + '\n'),
    json: (v) =>
      writeJson(
        v,
        (text) => write('stdout', text),
        (x) => redactor.maskValue(x),
        // Each resource's result on its own: hosts that share one share its text.
        4,
      ),
    isTTY: Boolean(process.stdout.isTTY),
  };
}
