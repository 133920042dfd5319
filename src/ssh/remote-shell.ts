// One long-lived remote shell per host and run: a single exec channel running `sh -s` (through
// sudo when the connection says become), to which every script of the run is written in turn.
//
// Why one shell and not one channel per script:
//  - the run has a process on the host for as long as it lives: the run lock records its pid,
//    so a lock whose shell is gone is known to be stale (src/engine/lock.ts);
//  - sudo authenticates once per run, and a wrong password costs exactly one attempt: keel
//    answers sudo's prompt once and, if sudo asks again, closes stdin instead of retrying;
//  - a further script costs one round trip on an open channel, not a new sshd session (~50 ms).
//
// Framing: each script runs in a subshell, `( script ) </dev/null`, followed by a marker line
// with a per-script nonce and the exit status on stdout, and a marker on stderr. sh parses the
// whole subshell before running it, so a script cut short in transit runs nothing; an `exit`
// in a script ends its subshell, not the shell. The shell itself ignores HUP and PIPE, so after
// a dropped connection it finishes the script it is running (and any queued after it).
//
// A script's stdout lines can be followed as they arrive (onStdoutLine): the engine's status
// lines say which step began and ended while the script runs.
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { HostUnreachableError } from '../errors.js';
import { BecomeError, CommandTimeoutError } from './errors.js';
import { becomeFailure, SUDO_PROMPT, SHELL_READY, type RemoteInvocation } from './become.js';
import type { ExecResult } from './types.js';
import { ByteBuffer } from './byte-buffer.js';

const BOOTSTRAP = "trap '' HUP PIPE\n";

interface Pending {
  nonce: string;
  outMarker: Buffer;
  errMarker: Buffer;
  resolve(r: ExecResult): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
  onLine?: (line: string) => void;
  /** Where the end marker may start, at the earliest (in RemoteShell.out): the output before
   *  it was searched already. */
  searchFrom: number;
  /** Where the next stdout line starts (in RemoteShell.out). */
  lineFrom: number;
  /** The last line (the one the end marker cuts) has been passed on. */
  linesDone: boolean;
  /** What onLine threw, first: the script's outcome is that error (a bug of the caller's). */
  lineError?: unknown;
}

export interface ShellHooks {
  host: string;
  target: string;
  /** Why the connection dropped, if it did (for messages). */
  lostReason(): string | undefined;
}

export class RemoteShell {
  private readonly out = new ByteBuffer();
  private readonly err = new ByteBuffer();
  private pending: Pending | undefined;
  private exited: { code: number | null; signal?: string } | undefined;
  private closed = false;
  private closeWaiters: (() => void)[] = [];
  private sendingNow = false;
  /** sudo's shell prints SHELL_READY first; until then stdout is sudo's, not a script's. */
  private awaitingReady: boolean;

  private constructor(
    private readonly channel: ClientChannel,
    private readonly hooks: ShellHooks,
    private readonly inv: RemoteInvocation,
    readySeen: boolean,
  ) {
    this.awaitingReady = !readySeen;
    channel.on('data', (d: Buffer) => this.onData('out', d));
    channel.stderr.on('data', (d: Buffer) => this.onData('err', d));
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exited = { code: code ?? null, ...(signal ? { signal } : {}) };
    });
    channel.on('close', () => this.onClose());
    channel.on('error', () => undefined); // reported through 'close' and the client's own events
  }

  /** Open the shell on `channel` (already exec'd with `inv.command`): answer sudo, then bootstrap. */
  static async start(channel: ClientChannel, inv: RemoteInvocation, hooks: ShellHooks, password?: string): Promise<RemoteShell> {
    // With a password, nothing may be written before sudo has asked for it (or started the
    // shell): sudo would read the first line of a script as the password.
    if (inv.handshake === 'password') await passwordHandshake(channel, inv, hooks, password);
    const shell = new RemoteShell(channel, hooks, inv, inv.handshake !== 'ready');
    channel.write(BOOTSTRAP);
    return shell;
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  get alive(): boolean {
    return !this.closed;
  }

  /** Run one script; resolves with its exit status and output once its markers arrive.
   *  `onLine` gets each stdout line as it arrives (see RunScriptOptions.onStdoutLine). */
  run(script: string, timeoutMs?: number, onLine?: (line: string) => void): Promise<ExecResult> {
    if (this.pending) throw new Error('RemoteShell.run: a script is already running');
    if (this.closed) return Promise.reject(this.lostError());
    return new Promise<ExecResult>((resolve, reject) => {
      const nonce = newMarkerNonce();
      const p: Pending = {
        nonce,
        outMarker: Buffer.from(`\n${nonce} X `),
        errMarker: Buffer.from(`\n${nonce} X\n`),
        resolve,
        reject,
        onLine,
        searchFrom: 0,
        lineFrom: 0,
        linesDone: false,
      };
      this.pending = p;
      if (timeoutMs !== undefined && timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.settle(undefined, new CommandTimeoutError(this.hooks.host, timeoutMs, this.out.view().toString('utf8'), this.err.view().toString('utf8')));
          // Ask sshd to kill the shell (OpenSSH >= 7.9 honours it), then close the channel.
          try {
            this.channel.signal('KILL');
          } catch {
            // the channel may already be gone
          }
          this.channel.close();
        }, timeoutMs);
      }
      // write() says false while ssh2 still holds some of it (the host's window is full):
      // until 'drain', the host has not got the whole script.
      this.sendingNow = !this.channel.write(frame(script, nonce));
      if (this.sendingNow) this.channel.once('drain', () => (this.sendingNow = false));
    });
  }

  /** The running script is still being sent (see HostSession.sending). */
  get sending(): boolean {
    return this.busy && this.sendingNow;
  }

  /** Close the channel now, without sending what is left: a script cut there never runs. */
  cut(): void {
    this.channel.close();
  }

  /** Queue a last script and end stdin without waiting: the host runs it after whatever is
   *  running now, even once keel is gone. */
  queueAndEnd(script?: string): void {
    if (this.closed) return;
    if (script) this.channel.write(frame(script, newMarkerNonce()));
    this.channel.end();
  }

  /** End stdin and wait (up to `ms`) for the shell to exit. */
  async end(ms = 5000): Promise<void> {
    if (this.closed) return;
    this.channel.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.channel.close();
        resolve();
      }, ms);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private onData(stream: 'out' | 'err', d: Buffer): void {
    (stream === 'out' ? this.out : this.err).append(d);
    if (this.awaitingReady) {
      const at = this.out.view().indexOf(READY_LINE);
      if (at < 0) return;
      this.out.consume(at + READY_LINE.length);
      this.err.clear(); // sudo's lecture, if any
      this.awaitingReady = false;
    }
    const p = this.pending;
    if (!p) return;
    const out = this.out.view();
    const o = out.indexOf(p.outMarker, p.searchFrom);
    if (p.onLine && stream === 'out') this.passLines(p, o);
    if (o < 0) {
      p.searchFrom = Math.max(0, out.length - p.outMarker.length + 1);
      return;
    }
    const eol = out.indexOf(0x0a, o + p.outMarker.length);
    if (eol < 0) return;
    const err = this.err.view();
    const e = err.indexOf(p.errMarker);
    if (e < 0) return;
    const code = Number(out.subarray(o + p.outMarker.length, eol).toString('latin1'));
    const result: ExecResult = {
      code: Number.isInteger(code) ? code : null,
      stdout: out.subarray(0, o).toString('utf8'),
      stderr: err.subarray(0, e).toString('utf8'),
    };
    this.out.consume(eol + 1);
    this.err.consume(e + p.errMarker.length);
    this.settle(result);
  }

  /** Pass on the complete stdout lines not passed yet; `markerAt`: where the end marker's
   *  newline is (-1 while it has not arrived). */
  private passLines(p: Pending, markerAt: number): void {
    if (p.linesDone) return;
    const out = this.out.view();
    const limit = markerAt >= 0 ? markerAt : out.length;
    for (;;) {
      const nl = out.indexOf(0x0a, p.lineFrom);
      if (nl < 0 || nl >= limit) break;
      // An empty line may be the newline the end marker starts with: wait until that is known.
      if (markerAt < 0 && nl === p.lineFrom && mayStart(out.subarray(nl), p.outMarker)) break;
      this.passLine(p, out.toString('utf8', p.lineFrom, nl));
      p.lineFrom = nl + 1;
    }
    if (markerAt < 0) return;
    // The script's last line, when its output did not end with a newline.
    if (markerAt > p.lineFrom) this.passLine(p, out.toString('utf8', p.lineFrom, markerAt));
    p.linesDone = true;
  }

  private passLine(p: Pending, line: string): void {
    if (p.lineError !== undefined) return;
    try {
      p.onLine!(line);
    } catch (err) {
      p.lineError = err;
    }
  }

  private onClose(): void {
    this.closed = true;
    for (const w of this.closeWaiters.splice(0)) w();
    if (!this.pending) return;
    if (this.hooks.lostReason() !== undefined) return this.settle(undefined, this.lostError());
    if (this.awaitingReady) {
      // sudo refused before the shell started (sudo -n without a password, not allowed...).
      const stderr = this.err.view().toString('utf8');
      return this.settle(
        undefined,
        becomeFailure(this.hooks.host, this.inv, { prompts: 0, answered: false, code: this.exited?.code ?? null, stderr }) ??
          new BecomeError(this.hooks.host, `sudo ended before starting the shell (exit ${this.exited?.code ?? 'unknown'}):\n${stderr.trim() || '(no output)'}`),
      );
    }
    // The shell ended before the script's marker: the script (or sh) exited the shell.
    this.settle({
      code: this.exited?.code ?? null,
      ...(this.exited?.signal ? { signal: this.exited.signal } : {}),
      stdout: this.out.view().toString('utf8'),
      stderr: this.err.view().toString('utf8'),
    });
  }

  private settle(result?: ExecResult, error?: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (p.timer) clearTimeout(p.timer);
    if (error) p.reject(error);
    else if (p.lineError !== undefined) p.reject(p.lineError instanceof Error ? p.lineError : new Error(String(p.lineError)));
    else p.resolve(result!);
  }

  /** Fail the running script now (the connection dropped). */
  fail(error: Error): void {
    this.settle(undefined, error);
  }

  private lostError(): Error {
    return new HostUnreachableError(
      this.hooks.host,
      `connection lost while running a script on ${this.hooks.target} (${this.hooks.lostReason() ?? 'closed'}); ` + 'the script may have partly run',
    );
  }
}

/** `bytes` (all that arrived from a newline on) may be the start of `marker`. */
function mayStart(bytes: Buffer, marker: Buffer): boolean {
  return bytes.length < marker.length && marker.subarray(0, bytes.length).equals(bytes);
}

function newMarkerNonce(): string {
  return '@@keel-' + randomBytes(6).toString('hex');
}

/** The bytes that run `script` in a subshell and mark its end on stdout and stderr. */
export function frame(script: string, nonce: string): string {
  const body = script.endsWith('\n') ? script : script + '\n';
  return `(\ntrap - PIPE\n${body})</dev/null\nprintf '\\n%s X %s\\n' '${nonce}' "$?"; printf '\\n%s X\\n' '${nonce}' >&2\n`;
}

const READY_LINE = Buffer.from(SHELL_READY + '\n');

/**
 * sudo -S prints SUDO_PROMPT on stderr when it wants the password: it gets it once. A second
 * prompt means the password was wrong, and stdin is closed so that sudo gives up after that
 * one attempt (pam_faillock counts every attempt; three can lock the account). Resolves when
 * the shell says it is ready; the ready line stays in the channel for RemoteShell to skip.
 */
function passwordHandshake(channel: ClientChannel, inv: RemoteInvocation, hooks: ShellHooks, password?: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    let prompts = 0;
    let answered = false;
    let done = false;
    const finish = (e?: Error) => {
      if (done) return;
      done = true;
      channel.removeListener('data', onOut);
      channel.stderr.removeListener('data', onErr);
      channel.removeListener('close', onClose);
      if (e) reject(e);
      else resolve();
    };
    const onOut = (d: Buffer) => {
      out += d.toString('latin1');
      if (out.includes(SHELL_READY + '\n')) finish();
    };
    const onErr = (d: Buffer) => {
      err += d.toString('utf8');
      const count = err.split(SUDO_PROMPT).length - 1;
      if (count <= prompts) return;
      prompts = count;
      if (password !== undefined && !answered) {
        answered = true;
        channel.write(`${password}\n`);
      } else {
        // Asked again: the password was wrong. Kill sudo while it waits for the second answer:
        // closing stdin instead would make PAM count a second failed attempt (pam_faillock
        // records the conversation's failure too). sshd delivers the signal (OpenSSH >= 7.9);
        // the channel closes soon after in any case.
        try {
          channel.signal('KILL');
        } catch {
          // not supported: closing below still stops sudo
        }
        setTimeout(() => channel.close(), 300).unref();
      }
    };
    let exitCode: number | null = null;
    channel.once('exit', (c: number | null) => (exitCode = c ?? null));
    const onClose = () => {
      const stderr = err.split(SUDO_PROMPT).join('');
      finish(
        becomeFailure(hooks.host, inv, { prompts, answered, code: exitCode, stderr }) ??
          (hooks.lostReason() !== undefined
            ? new HostUnreachableError(hooks.host, `connection to ${hooks.target} lost while starting sudo (${hooks.lostReason()})`)
            : new BecomeError(hooks.host, `sudo ended before starting the shell (exit ${exitCode ?? 'unknown'}):\n${stderr.trim() || '(no output)'}`)),
      );
    };
    channel.on('data', onOut);
    channel.stderr.on('data', onErr);
    channel.on('close', onClose);
  });
}
