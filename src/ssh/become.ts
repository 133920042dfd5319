// How a script runs as the become user: the remote command line and what goes on stdin.
//
// With a password, `sudo -S` reads it from stdin one byte at a time (sudo's tgetpass), so
// whatever follows the password line stays in the pipe for the command sudo starts. Two
// guard lines follow the password:
//  - wrong password: sudo retries by reading more lines (3 tries by default); the guards
//    are consumed as failed attempts, never the script's lines, and sudo exits 1;
//  - no password asked (NOPASSWD, cached credentials): sudo reads nothing, so the command
//    sudo runs first skips lines up to the first guard. The password line is discarded there,
//    never executed by `sh -s` (which would run it as a command and echo it in an error).
// The password never appears on a command line, in argv or in any message.
import type { Connection } from '../inventory/types.js';
import { quote, sh } from '../shell/quote.js';
import { BecomeError } from './errors.js';
import type { ExecResult } from './types.js';

export const SUDO_GUARD = '# keel: sudo guard';

/** Runs after sudo: skip stdin up to the first guard line, then run the rest as the script.
 *  `read` in a POSIX shell reads a pipe byte by byte, so `sh -s` gets everything after it. */
const SKIP_TO_GUARD = `while IFS= read -r keel_line; do [ "$keel_line" = ${quote(SUDO_GUARD)} ] && break; done; exec sh -s`;

export interface RemoteInvocation {
  /** The exec command line (no secrets). */
  command: string;
  /** Bytes to write before the script (the password and guards), or empty. */
  stdinPrefix: string;
  /** True when the command goes through sudo, so its failures must be checked. */
  viaSudo: boolean;
  /** True when a password travels on stdin. */
  withPassword: boolean;
}

export function remoteInvocation(
  hostName: string,
  conn: Connection,
  becomePassword: string | undefined,
): RemoteInvocation {
  const plain = { command: 'sh -s', stdinPrefix: '', viaSudo: false, withPassword: false };
  if (!conn.become || conn.user === conn.becomeUser) return plain;
  if (becomePassword !== undefined) {
    if (/[\r\n]/.test(becomePassword)) {
      throw new BecomeError(hostName, 'the become password contains a line break, which sudo cannot read');
    }
    return {
      command: sh`sudo -S -p ${''} -u ${conn.becomeUser} -H -- sh -c ${SKIP_TO_GUARD}`,
      stdinPrefix: `${becomePassword}\n${SUDO_GUARD}\n${SUDO_GUARD}\n`,
      viaSudo: true,
      withPassword: true,
    };
  }
  return {
    command: sh`sudo -n -u ${conn.becomeUser} -H -- sh -s`,
    stdinPrefix: '',
    viaSudo: true,
    withPassword: false,
  };
}

/**
 * Throw a BecomeError when the result is sudo refusing, not the script failing. sudo exits 1
 * (127 from sh when sudo is missing) and says why on stderr before anything of the script ran.
 */
export function checkBecome(
  hostName: string,
  conn: Connection,
  inv: RemoteInvocation,
  result: ExecResult,
): void {
  if (!inv.viaSudo) return;
  const who = `${conn.user} on ${hostName}`;
  const err = result.stderr;
  if (result.code === 127 && /sudo: (command )?not found|sudo: No such file/i.test(err)) {
    throw new BecomeError(hostName, `sudo is not installed, so ${conn.user} cannot become ${conn.becomeUser}`, {
      hint: `install sudo on the host, or connect as ${conn.becomeUser}`,
    });
  }
  if (result.code !== 1) return;
  if (inv.withPassword && /Sorry, try again|incorrect password attempt/.test(err)) {
    throw new BecomeError(hostName, `sudo rejected the password for ${who}`, {
      hint: 'check become_password in the vault for this host',
    });
  }
  if (/a password is required/.test(err)) {
    throw new BecomeError(hostName, `sudo needs a password for ${who}`, {
      hint: 'put become_password in the vault (or allow NOPASSWD for this user in sudoers)',
    });
  }
  if (/is not in the sudoers file|is not allowed to (run sudo|execute)|may not run sudo/.test(err)) {
    throw new BecomeError(hostName, `sudo does not allow ${conn.user} to run commands as ${conn.becomeUser} on ${hostName}`, {
      hint: 'fix the sudoers rules on the host, or change become_user',
    });
  }
  if (/you must have a tty to run sudo|a terminal is required/.test(err)) {
    throw new BecomeError(hostName, `sudo on ${hostName} requires a terminal (requiretty)`, {
      hint: 'remove `Defaults requiretty` for this user in sudoers',
    });
  }
}
