// Live progress per host. On a TTY, listr2 draws one line per host that updates in place;
// otherwise plain lines, one per event worth reading (changes, failures, host done).
// listr2 is loaded only for a terminal (progress-tty.ts), off the start-up path of the rest.
import type { HostResult, ResourceResult } from '../engine/results.js';
import { lastLines } from '../errors.js';
import type { Output } from './output.js';

export interface Progress {
  phase(host: string, phase: string): void;
  result(host: string, r: ResourceResult): void;
  hostDone(r: HostResult): void;
  /** Resolves when the display has finished drawing. */
  close(): Promise<void>;
  /** What the display already showed, so the summary does not print it twice. */
  readonly shows: { hostErrors: boolean; resourceFailures: boolean };
}

export async function createProgress(out: Output, hosts: string[], check: boolean): Promise<Progress> {
  if (out.isTTY && process.env.TERM !== 'dumb' && !process.env.CI) {
    const { ttyProgress } = await import('./progress-tty.js');
    return ttyProgress(out, hosts, check);
  }
  return plainProgress(out, check);
}

function plainProgress(out: Output, check: boolean): Progress {
  return {
    phase: () => undefined,
    result(host, r) {
      if (r.status === 'ok' || r.status === 'skipped') return;
      const verb = r.status === 'changed' ? (check ? (r.uncertain ? 'may change' : 'would change') : 'changed') : 'FAILED';
      out.line(`${host}  ${verb.padEnd(12)} ${r.id}  ${r.reason}`);
      if (r.status === 'failed' && r.output) out.line(failedOutput(r.output));
    },
    hostDone(h) {
      if (h.unreachable) out.line(`${h.name}  UNREACHABLE  ${h.error ?? ''}`);
      else if (h.error) out.line(`${h.name}  FAILED       ${h.error}`);
    },
    close: async () => undefined,
    shows: { hostErrors: true, resourceFailures: true },
  };
}

/** What a failed resource printed, as shown under it: live here, or in the summary. */
export function failedOutput(text: string): string {
  return lastLines(text, 15, '    ');
}
