// A host's SSH connection for the commands that operate a live app (keel exec, logs, ssh):
// scripts through the HostSession as every run sends them, and besides, processes on channels
// of their own whose output streams as it comes, with a terminal when asked (keel exec -i,
// keel ssh). Both share one client: one SSH connection per host.
//
// A process that runs as the become user goes through sudo like the run's shell does
// (become.ts): `sudo -n`, or `sudo -S` answered once with the password on stdin, never on a
// command line. The process prints a marker line first; everything before it (sudo's prompt,
// its lecture, the echo of a terminal) is sudo's and is never shown.
import { randomBytes } from 'node:crypto';
import type { Client, ClientChannel } from 'ssh2';
import { HostUnreachableError } from '../errors.js';
import type { Connection } from '../inventory/types.js';
import { sh, type Shell } from '../shell/quote.js';
import { becomeFailure, SUDO_PROMPT, type RemoteInvocation } from './become.js';
import { openClients, type ConnectOptions } from './connect.js';
import { BecomeError } from './errors.js';
import { SshHostSession, describeDrop, type SessionInit } from './session.js';
import type { HostSession } from './types.js';

export interface Pty {
  rows: number;
  cols: number;
  term: string;
}

export interface ProcessOptions {
  /** Run as the connection's become user (through sudo when that is another user). */
  become: boolean;
  /** A terminal on the host (its output then comes on stdout only). */
  pty?: Pty;
  onStdout(data: Buffer): void;
  onStderr(data: Buffer): void;
  /** How long sudo may take to start the process (default 30 s). */
  startTimeoutMs?: number;
}

export interface ProcessExit {
  /** null when a signal ended it, or when the connection was lost. */
  code: number | null;
  signal?: string;
  /** Why the connection dropped, if it did. */
  lost?: string;
}

export interface RemoteProcess {
  write(data: string | Buffer): void;
  /** End its stdin. */
  end(): void;
  /** The terminal's new size (a pty only). */
  resize(rows: number, cols: number): void;
  /** Send it a signal (sshd >= 7.9 delivers it). */
  signal(name: 'INT' | 'TERM' | 'HUP' | 'KILL'): void;
  /** Close the channel. */
  close(): void;
  /** Resolves once it has exited and all its output was delivered. */
  readonly exited: Promise<ProcessExit>;
}

export async function openLink(opts: ConnectOptions): Promise<HostLink> {
  return new HostLink(await openClients(opts));
}

export class HostLink {
  readonly session: HostSession;
  private lost: string | undefined;

  constructor(private readonly init: SessionInit) {
    this.session = new SshHostSession(init);
    for (const c of [init.client, ...init.jumps]) {
      c.on('error', (err: Error) => (this.lost ??= describeDrop(err)));
      c.on('close', () => (this.lost ??= 'the connection was closed'));
    }
  }

  get host(): string {
    return this.init.hostName;
  }

  get connection(): Connection {
    return this.init.connection;
  }

  /** Start `command` (shell, run by the login shell of the connection's user) on its own channel. */
  async start(command: Shell, o: ProcessOptions): Promise<RemoteProcess> {
    const conn = this.init.connection;
    const sudo = o.become && conn.become && conn.user !== conn.becomeUser ? sudoInvocation(this.host, conn, this.init.becomePassword) : undefined;
    const marker = `@@keel-go-${randomBytes(6).toString('hex')}`;
    // Without a terminal, stdout and stderr each get the marker: they travel apart, and
    // either may be first.
    const marks = o.pty ? sh`printf '%s\\n' ${marker}` : sh`printf '%s\\n' ${marker}; printf '%s\\n' ${marker} >&2`;
    const line = sudo ? `${sudo.command} ${sh`${`${marks.text}; ${command.text}`}`.text}` : command.text;
    const gate = new OutputGate(o.onStdout, o.onStderr);
    let exited: Promise<ProcessExit> = Promise.resolve({ code: null });
    // Listeners go on in exec's callback: a quick command's whole life (output, exit status,
    // close) can arrive in the same packet as the channel, before an await would resume.
    const channel = await this.exec(line, o.pty, (ch) => {
      exited = watchExit(ch, () => this.lost);
      ch.on('data', (d: Buffer) => gate.out(d));
      ch.stderr.on('data', (d: Buffer) => gate.err(d));
      if (!sudo) gate.open();
    });
    if (sudo) {
      await sudoHandshake(this.host, channel, gate, sudo, this.init.becomePassword, marker, !!o.pty, o.startTimeoutMs ?? 30_000, exited).catch((err) => {
        channel.close();
        throw err;
      });
    }
    return {
      write: (d) => void channel.write(d),
      end: () => void channel.end(),
      resize: (rows, cols) => void channel.setWindow(rows, cols, 0, 0),
      signal: (name) => {
        try {
          channel.signal(name);
        } catch {
          // the channel is already gone
        }
      },
      close: () => void channel.close(),
      exited,
    };
  }

  close(): Promise<void> {
    return this.session.close();
  }

  private exec(command: string, pty: Pty | undefined, setup: (ch: ClientChannel) => void): Promise<ClientChannel> {
    const client: Client = this.init.client;
    return new Promise((resolve, reject) => {
      const done = (err: Error | undefined, ch: ClientChannel) => {
        if (!err) {
          setup(ch);
          return resolve(ch);
        }
        const c = this.init.connection;
        reject(new HostUnreachableError(this.host, `cannot open a channel on ${c.user}@${c.address}:${c.port}: ${this.lost ?? err.message}`));
      };
      if (pty) client.exec(command, { pty: { rows: pty.rows, cols: pty.cols, term: pty.term, width: 0, height: 0 } }, done);
      else client.exec(command, done);
    });
  }
}

/** `sudo -n` or `sudo -S -p PROMPT`, as the run's shell is started (become.ts). */
function sudoInvocation(host: string, conn: Connection, password: string | undefined): RemoteInvocation {
  const who = { user: conn.user, becomeUser: conn.becomeUser };
  if (password === undefined) return { command: sh`sudo -n -u ${conn.becomeUser} -H -- sh -c`.text, handshake: 'ready', ...who };
  if (/[\r\n]/.test(password)) throw new BecomeError(host, 'the become password contains a line break, which sudo cannot read');
  return { command: sh`sudo -S -p ${SUDO_PROMPT} -u ${conn.becomeUser} -H -- sh -c`.text, handshake: 'password', ...who };
}

function watchExit(channel: ClientChannel, lost: () => string | undefined): Promise<ProcessExit> {
  let status: ProcessExit | undefined;
  channel.on('exit', (code: number | null, signal?: string) => {
    status = { code: code ?? null, ...(signal ? { signal } : {}) };
  });
  channel.on('error', () => undefined); // its end comes as 'close'
  return new Promise((resolve) =>
    channel.on('close', () => {
      const why = lost();
      resolve(status ?? { code: null, ...(why ? { lost: why } : { lost: 'the channel closed without an exit status' }) });
    }),
  );
}

/** Holds a process's output until sudo has started it; then passes it on as it comes. */
class OutputGate {
  stdout = Buffer.alloc(0);
  stderr = Buffer.alloc(0);
  private opened = false;
  /** Called on every chunk while closed (the handshake looks at what came so far). */
  onHeld: () => void = () => undefined;

  constructor(
    private readonly onStdout: (d: Buffer) => void,
    private readonly onStderr: (d: Buffer) => void,
  ) {}

  out(d: Buffer): void {
    if (this.opened) return this.onStdout(d);
    this.stdout = Buffer.concat([this.stdout, d]);
    this.onHeld();
  }

  err(d: Buffer): void {
    if (this.opened) return this.onStderr(d);
    this.stderr = Buffer.concat([this.stderr, d]);
    this.onHeld();
  }

  /** From now on output passes; `rest` (what followed the markers; by default all that was
   *  held) first. */
  open(rest: { out: Buffer; err: Buffer } = { out: this.stdout, err: this.stderr }): void {
    this.opened = true;
    if (rest.out.length) this.onStdout(rest.out);
    if (rest.err.length) this.onStderr(rest.err);
  }
}

/**
 * Answer sudo's prompt once (a second prompt: the password was wrong, sudo is killed: one
 * attempt, as the run's shell does), and wait for the marker on stdout (and stderr, without a
 * terminal). Then the gate opens with what came after the markers.
 */
function sudoHandshake(
  host: string,
  channel: ClientChannel,
  gate: OutputGate,
  inv: RemoteInvocation,
  password: string | undefined,
  marker: string,
  pty: boolean,
  timeoutMs: number,
  exited: Promise<ProcessExit>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let prompts = 0;
    let answered = false;
    let settled = false;
    const finish = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      gate.onHeld = () => undefined;
      if (e) return reject(e);
      // What came after the markers, all of it (more may have come since each was seen).
      gate.open({ out: after(gate.stdout)!, err: pty ? Buffer.alloc(0) : after(gate.stderr)! });
      resolve();
    };
    const timer = setTimeout(() => finish(new BecomeError(host, `sudo did not start the command within ${timeoutMs / 1000} s`)), timeoutMs);
    const countPrompts = () => {
      const seen = (gate.stdout.toString('latin1') + gate.stderr.toString('latin1')).split(SUDO_PROMPT).length - 1;
      if (seen <= prompts) return;
      prompts = seen;
      if (password !== undefined && !answered) {
        answered = true;
        channel.write(`${password}\n`);
      } else {
        try {
          channel.signal('KILL');
        } catch {
          // closing below stops sudo too
        }
        setTimeout(() => channel.close(), 300).unref();
      }
    };
    const after = (buf: Buffer): Buffer | undefined => {
      const at = buf.indexOf(marker);
      if (at < 0) return undefined;
      const eol = buf.indexOf(0x0a, at + marker.length);
      return eol < 0 ? undefined : buf.subarray(eol + 1);
    };
    gate.onHeld = () => {
      if (after(gate.stdout) && (pty || after(gate.stderr))) finish();
      else countPrompts();
    };
    // What came before this handshake was set up (all of it, for a quick command).
    gate.onHeld();
    void exited.then((x) => {
      if (settled) return;
      const stderr = (pty ? gate.stdout : gate.stderr).toString('utf8').split(SUDO_PROMPT).join('');
      finish(
        becomeFailure(host, inv, { prompts, answered, code: x.code, stderr }) ??
          (x.lost && x.code === null
            ? new HostUnreachableError(host, `connection lost while starting sudo (${x.lost})`)
            : new BecomeError(host, `sudo ended before starting the command (exit ${x.code ?? 'unknown'}):\n${stderr.trim() || '(no output)'}`)),
      );
    });
  });
}
