// The one place that turns errors into messages and exit codes.
import { BugError, ConfigErrors, KeelError } from '../errors.js';
import type { Output } from '../report/output.js';
import { CommanderError } from 'commander';

export const EXIT_OK = 0;
export const EXIT_CONFIG = 1; // usage, configuration or validation error: nothing was run
export const EXIT_HOSTS = 2; // one or more hosts failed or were unreachable
export const EXIT_UNKNOWN = 3; // a deploy or rollback lost a host after its release may have changed: what it runs is unknown

export function exitCodeFor(err: unknown, out: Output): number {
  if (err instanceof CommanderError) {
    // commander already printed its message (usage errors); --help and --version exit 0.
    return err.exitCode === 0 ? EXIT_OK : EXIT_CONFIG;
  }
  if (err instanceof ConfigErrors) {
    for (const e of err.errors) {
      out.warn(`error: ${e.message}`);
      if (e.hint) out.warn(`  hint: ${e.hint}`);
    }
    out.warn(`${err.errors.length} errors; nothing was run.`);
    return EXIT_CONFIG;
  }
  if (err instanceof KeelError && !(err instanceof BugError)) {
    out.warn(`error: ${err.message}`);
    if (err.hint) out.warn(`hint: ${err.hint}`);
    return err.exitCode;
  }
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  out.warn(err instanceof BugError ? detail : `internal error (a bug in keel, please report it):\n${detail}`);
  return 70;
}
