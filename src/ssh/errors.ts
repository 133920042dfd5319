// Errors of the SSH transport. All are host problems (exit 2): the run goes on with the
// other hosts, and the CLI prints the message and the hint.
import { HostUnreachableError, KeelError, type ErrorOptions } from '../errors.js';

/**
 * The host's key is unknown, changed or revoked: keel refused to talk to it, before sending
 * any credentials. A subclass of HostUnreachableError so the engine treats it the same way.
 */
export class HostKeyError extends HostUnreachableError {}

/** sudo refused to run the script (wrong or missing password, user not allowed, no sudo). */
export class BecomeError extends KeelError {
  override readonly exitCode = 2;
  constructor(
    readonly host: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${host}: ${message}`, options);
  }
}

/** A script ran longer than its timeout; keel closed its channel. */
export class CommandTimeoutError extends KeelError {
  override readonly exitCode = 2;
  constructor(
    readonly host: string,
    readonly timeoutMs: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${host}: the script timed out after ${formatSeconds(timeoutMs)} and was stopped`, {
      hint: 'raise the command timeout if the work is legitimately slow',
    });
  }
}

export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}
