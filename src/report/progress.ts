// Live progress per host, as the hosts' scripts report it. On a TTY, listr2 draws one line per
// host that updates in place (the step running, how long, how many are done); otherwise plain
// lines, one per event worth reading (changes, failures, host done) the moment it happens, a
// heartbeat while a step runs long, and with -v the steps' output lines.
// listr2 is loaded only for a terminal (progress-tty.ts), off the start-up path of the rest.
import type { HostResult, ResourceResult, StepActivity } from '../engine/results.js';
import { lastLines } from '../errors.js';
import { Heartbeat } from './heartbeat.js';
import { oneLine, printable } from './one-line.js';
import type { Output } from './output.js';

export interface Progress {
  phase(host: string, phase: string): void;
  result(host: string, r: ResourceResult): void;
  /** A step began or ended, or wrote a line. */
  step(host: string, s: StepActivity): void;
  hostDone(r: HostResult): void;
  /** Resolves when the display has finished drawing. */
  close(): Promise<void>;
  /** What the display already showed, so the summary does not print it twice; whether it
   *  shows the steps' output lines (the plain display does; asked for with -v). */
  readonly shows: { hostErrors: boolean; resourceFailures: boolean; output: boolean };
}

export interface ProgressOptions {
  /** A line every this many ms while a host is busy with one thing (plain display). */
  heartbeatMs?: number;
}

export async function createProgress(out: Output, hosts: string[], check: boolean, opts: ProgressOptions = {}): Promise<Progress> {
  if (out.isTTY && process.env.TERM !== 'dumb' && !process.env.CI) {
    const { ttyProgress } = await import('./progress-tty.js');
    return ttyProgress(out, hosts, check);
  }
  return plainProgress(out, check, opts);
}

export function plainProgress(out: Output, check: boolean, opts: ProgressOptions = {}): Progress {
  // Only for a step: a host past its probe may wait for the others' (or for its batch).
  const heartbeat = new Heartbeat((l) => out.line(l), opts.heartbeatMs);
  return {
    phase: () => undefined,
    result(host, r) {
      if (r.status === 'ok' || r.status === 'skipped') return;
      const verb = r.status === 'changed' ? (check ? (r.uncertain ? 'may change' : 'would change') : 'changed') : 'FAILED';
      out.line(`${host}  ${verb.padEnd(12)} ${oneLine(r.id)}  ${oneLine(r.reason)}`);
      if (r.status === 'failed' && r.output) out.line(failedOutput(r.output));
    },
    step(host, s) {
      if (s.state === 'output') out.line(`${host}  | ${printable(s.line)}`);
      else if (s.state === 'running') heartbeat.start(host, s.id);
      else heartbeat.stop(host);
    },
    hostDone(h) {
      heartbeat.stop(h.name);
      if (h.unreachable) out.line(`${h.name}  UNREACHABLE  ${h.error ?? ''}`);
      else if (h.error) out.line(`${h.name}  FAILED       ${h.error}`);
    },
    close: async () => heartbeat.close(),
    shows: { hostErrors: true, resourceFailures: true, output: true },
  };
}

/** What a failed resource printed, as shown under it: live here, or in the summary. */
export function failedOutput(text: string): string {
  return lastLines(text, 15, '    ');
}
