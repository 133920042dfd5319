// How the run's remote shell starts as the become user: the exec command line, and how sudo
// is answered. The password never appears on a command line, in argv or in any message.
//
//  - no become (or already that user): `sh -s`, nothing to wait for;
//  - become without a password: `sudo -n`, which never reads stdin, so scripts may follow at
//    once; the shell prints SHELL_READY first, so sudo's own output is told apart;
//  - become with a password: `sudo -S -p SUDO_PROMPT`. keel writes the password only when
//    sudo prints that prompt, and only once: if sudo asks again the password was wrong, and
//    keel closes stdin, so a wrong password costs exactly one attempt (see remote-shell.ts).
//    When sudo does not ask (NOPASSWD, cached credentials) the password is never sent.
import type { Connection } from '../inventory/types.js';
import { quote, sh } from '../shell/quote.js';
import { BecomeError } from './errors.js';

/** What the shell behind sudo prints before it reads any script. */
export const SHELL_READY = 'keel-shell-ready';
/** sudo's prompt (-p), unlike anything else sudo prints; % is sudo's escape, so none here. */
export const SUDO_PROMPT = '[keel-sudo-password]';

const READY_THEN_SHELL = `printf '%s\\n' ${quote(SHELL_READY)}; exec sh -s`;

export interface RemoteInvocation {
  /** The exec command line (no secrets). */
  command: string;
  /** none: plain sh; ready: sudo -n, skip to SHELL_READY; password: answer sudo's prompt. */
  handshake: 'none' | 'ready' | 'password';
  /** Who connects and who they become, for messages. */
  user: string;
  becomeUser: string;
}

export function remoteInvocation(hostName: string, conn: Connection, becomePassword: string | undefined): RemoteInvocation {
  const who = { user: conn.user, becomeUser: conn.becomeUser };
  if (!conn.become || conn.user === conn.becomeUser) return { command: 'sh -s', handshake: 'none', ...who };
  if (becomePassword !== undefined) {
    if (/[\r\n]/.test(becomePassword)) {
      throw new BecomeError(hostName, 'the become password contains a line break, which sudo cannot read');
    }
    return {
      command: sh`sudo -S -p ${SUDO_PROMPT} -u ${conn.becomeUser} -H -- sh -c ${READY_THEN_SHELL}`.text,
      handshake: 'password',
      ...who,
    };
  }
  return { command: sh`sudo -n -u ${conn.becomeUser} -H -- sh -c ${READY_THEN_SHELL}`.text, handshake: 'ready', ...who };
}

export interface SudoOutcome {
  /** How many times sudo asked for the password. */
  prompts: number;
  /** Whether keel answered the first prompt. */
  answered: boolean;
  code: number | null;
  /** sudo's stderr, prompts removed. */
  stderr: string;
}

/** The BecomeError for sudo ending before the shell started, or undefined if unrecognised. */
export function becomeFailure(hostName: string, inv: RemoteInvocation, o: SudoOutcome): BecomeError | undefined {
  const who = `${inv.user} on ${hostName}`;
  const err = o.stderr;
  if (o.code === 127 && /sudo: (command )?not found|sudo: No such file/i.test(err)) {
    return new BecomeError(hostName, `sudo is not installed, so ${inv.user} cannot become ${inv.becomeUser}`, {
      hint: `install sudo on the host, or connect as ${inv.becomeUser}`,
    });
  }
  if (o.answered && (o.prompts > 1 || /Sorry, try again|incorrect password attempt/.test(err))) {
    return new BecomeError(hostName, `sudo rejected the password for ${who} (one attempt was made)`, {
      hint:
        'check become_password in the vault for this host before running again: hosts with pam_faillock ' +
        '(deny=3 is common) lock the account after a few wrong attempts',
    });
  }
  if (/a password is required/.test(err) || (o.prompts > 0 && !o.answered)) {
    return new BecomeError(hostName, `sudo needs a password for ${who}`, {
      hint: 'put become_password in the vault, use -K to type it, or allow NOPASSWD for this user in sudoers',
    });
  }
  if (/is not in the sudoers file|is not allowed to (run sudo|execute)|may not run sudo/.test(err)) {
    return new BecomeError(hostName, `sudo does not allow ${inv.user} to run commands as ${inv.becomeUser} on ${hostName}`, {
      hint: 'fix the sudoers rules on the host, or change become_user',
    });
  }
  if (/you must have a tty to run sudo|a terminal is required/.test(err)) {
    return new BecomeError(hostName, `sudo on ${hostName} requires a terminal (requiretty)`, {
      hint: 'remove `Defaults requiretty` for this user in sudoers',
    });
  }
  return undefined;
}
