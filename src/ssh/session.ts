// A HostSession over one authenticated ssh2 Client (plus the jump hosts it travels through).
// All scripts of a run go to one remote shell (remote-shell.ts), started on first use.
import type { Client, ClientChannel } from 'ssh2';
import { HostUnreachableError, KeelError } from '../errors.js';
import type { Connection } from '../inventory/types.js';
import { remoteInvocation, type RemoteInvocation } from './become.js';
import { RemoteShell } from './remote-shell.js';
import { BecomeError } from './errors.js';
import type { ExecResult, HostSession, RunScriptOptions } from './types.js';

export interface SessionInit {
  hostName: string;
  connection: Connection;
  /** The client talking to the target. */
  client: Client;
  /** Clients of the jump hosts, outermost first; closed after the target's. */
  jumps: Client[];
  becomePassword?: string;
  commandTimeoutMs?: number;
}

export class SshHostSession implements HostSession {
  readonly host: string;
  private scripts = 0;
  private lostReason: string | undefined;
  private closing = false;
  private readonly invocation: RemoteInvocation;
  private shell: Promise<RemoteShell> | undefined;
  private current: RemoteShell | undefined;
  /** sudo refused once: never ask again in this run (each try is a failed attempt on the host). */
  private refused: Error | undefined;

  constructor(private readonly init: SessionInit) {
    this.host = init.hostName;
    // Built once, so a bad become password fails before any channel opens.
    this.invocation = remoteInvocation(init.hostName, init.connection, init.becomePassword);
    for (const c of [init.client, ...init.jumps]) {
      // Keepalive timeouts and resets arrive as 'error' before 'close'; remember the reason.
      c.on('error', (err: Error) => {
        this.lostReason ??= describeDrop(err);
      });
      c.on('close', () => {
        this.lostReason ??= 'the connection was closed';
        // ssh2 emits the client's 'close' before the channels': fail the running script now,
        // as a lost connection rather than a script that ended without an exit status.
        this.current?.fail(this.lostError('while running a script'));
      });
    }
  }

  get roundTrips(): number {
    return this.scripts;
  }

  get busy(): boolean {
    return this.current?.busy ?? false;
  }

  get sending(): boolean {
    return this.current?.sending ?? false;
  }

  private get target(): string {
    const c = this.init.connection;
    return `${c.user}@${c.address}:${c.port}`;
  }

  async runScript(script: string, options: RunScriptOptions = {}): Promise<ExecResult> {
    if (this.closing) throw new KeelError(`${this.host}: the session is closed`);
    if (this.lostReason !== undefined) throw this.lostError('earlier');
    const shell = await this.openShell();
    this.scripts++;
    try {
      return await shell.run(script, options.timeoutMs ?? this.init.commandTimeoutMs, options.onStdoutLine);
    } catch (err) {
      if (err instanceof BecomeError) this.refused = err; // sudo -n refused before the shell started
      throw err;
    }
  }

  /** The run's shell: started on first use, started again if it ended (a timeout kills it). */
  private async openShell(): Promise<RemoteShell> {
    if (this.refused) throw this.refused;
    if (this.current && !this.current.alive) this.shell = undefined;
    this.shell ??= (async () => {
      const channel = await this.exec(this.invocation.command);
      const shell = await RemoteShell.start(
        channel,
        this.invocation,
        { host: this.host, target: this.target, lostReason: () => this.lostReason },
        this.init.becomePassword,
      );
      this.current = shell;
      return shell;
    })();
    try {
      return await this.shell;
    } catch (err) {
      this.shell = undefined;
      if (err instanceof BecomeError) this.refused = err;
      throw err;
    }
  }

  private exec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.init.client.exec(command, (err, ch) => {
        if (!err) return resolve(ch);
        reject(
          this.lostReason !== undefined
            ? this.lostError('while opening a channel')
            : new HostUnreachableError(this.host, `cannot open a channel on ${this.target}: ${err.message}`),
        );
      });
    });
  }

  async abandon(last?: string): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const shell = this.current;
    if (shell?.alive && this.lostReason === undefined) {
      if (shell.sending) {
        // Part of the script is still on this side: cut it off (the host never runs a script it
        // did not get whole) and run `last` (the lock's release) in a shell of its own.
        shell.cut();
        this.current = undefined;
        this.shell = undefined;
        if (last) {
          await this.openShell()
            .then(async (fresh) => {
              await fresh.run(last, 5000);
              await fresh.end(2000);
            })
            .catch(() => undefined);
        }
      } else if (shell.busy) {
        // Queue `last` behind the running script and let go; give sshd a moment to hand the
        // bytes to the shell's stdin before the connection goes.
        shell.queueAndEnd(last);
        await new Promise((r) => setTimeout(r, 300));
      } else {
        if (last) await shell.run(last, 5000).catch(() => undefined);
        await shell.end(2000);
      }
    }
    await this.endClients();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.current?.alive && this.lostReason === undefined) await this.current.end();
    await this.endClients();
  }

  private async endClients(): Promise<void> {
    // Innermost first: the target travels through the jump hosts' forwarded channels.
    for (const c of [this.init.client, ...[...this.init.jumps].reverse()]) await endClient(c);
  }

  private lostError(when: string): HostUnreachableError {
    return new HostUnreachableError(
      this.host,
      when === 'while running a script'
        ? `connection lost while running a script on ${this.target} (${this.lostReason ?? 'closed'}); the script may have partly run`
        : `connection to ${this.target} lost ${when} (${this.lostReason ?? 'closed'})`,
    );
  }
}

const closedClients = new WeakSet<Client>();

/** Start tracking whether the client's connection has closed (call right after creating it). */
export function watchClose(client: Client): void {
  client.once('close', () => closedClients.add(client));
}

/** End a client and wait for its connection to close (at once if it already has). */
export function endClient(client: Client): Promise<void> {
  return new Promise((resolve) => {
    if (closedClients.has(client)) return resolve();
    const timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, 2000);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    client.end();
  });
}

export function describeDrop(err: Error & { code?: string | number; level?: string }): string {
  if (err.level === 'client-timeout' || /keepalive/i.test(err.message)) return 'the host stopped answering keepalives';
  if (err.code === 'ECONNRESET') return 'connection reset';
  return err.message;
}
