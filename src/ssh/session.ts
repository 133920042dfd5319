// A HostSession over one authenticated ssh2 Client (plus the jump hosts it travels through).
// Each runScript is one exec channel: the command is `sh -s` (or sudo), the script is stdin.
import { StringDecoder } from 'node:string_decoder';
import type { Client, ClientChannel } from 'ssh2';
import { HostUnreachableError, KeelError } from '../errors.js';
import type { Connection } from '../inventory/types.js';
import { checkBecome, remoteInvocation, type RemoteInvocation } from './become.js';
import { CommandTimeoutError } from './errors.js';
import type { ExecOptions, ExecResult, HostSession } from './types.js';

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
  private opened = 0;
  private lostReason: string | undefined;
  private closing = false;
  private readonly invocation: RemoteInvocation;

  constructor(private readonly init: SessionInit) {
    this.host = init.hostName;
    // Built once, so a bad become password fails before any channel opens.
    this.invocation = remoteInvocation(init.hostName, init.connection, init.becomePassword);
    const all = [init.client, ...init.jumps];
    for (const c of all) {
      // Keepalive timeouts and resets arrive as 'error' before 'close'; remember the reason.
      c.on('error', (err: Error) => {
        this.lostReason ??= describeDrop(err);
      });
      c.on('close', () => {
        this.lostReason ??= 'the connection was closed';
      });
    }
  }

  get channelsOpened(): number {
    return this.opened;
  }

  private get target(): string {
    const c = this.init.connection;
    return `${c.user}@${c.address}:${c.port}`;
  }

  async runScript(script: string, options: Omit<ExecOptions, 'stdin'> = {}): Promise<ExecResult> {
    if (this.closing) throw new KeelError(`${this.host}: the session is closed`);
    if (this.lostReason !== undefined) {
      throw new HostUnreachableError(this.host, `connection to ${this.target} lost earlier (${this.lostReason})`);
    }
    const inv = this.invocation;
    const result = await this.exec(inv.command, inv.stdinPrefix + script, {
      timeoutMs: options.timeoutMs ?? this.init.commandTimeoutMs,
      onStdout: options.onStdout,
    });
    checkBecome(this.host, this.init.connection, inv, result);
    return result;
  }

  private exec(command: string, stdin: string, options: Omit<ExecOptions, 'stdin'>): Promise<ExecResult> {
    const { client } = this.init;
    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      let channel: ClientChannel | undefined;
      let timer: NodeJS.Timeout | undefined;
      let done = false;

      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        client.removeListener('close', onLost);
        if (err) reject(err);
        else
          resolve({
            code,
            ...(signal !== undefined ? { signal } : {}),
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
          });
      };
      const onLost = () => {
        finish(
          new HostUnreachableError(
            this.host,
            `connection lost while running a script on ${this.target} (${this.lostReason ?? 'closed'}); ` +
              'the script may have partly run',
          ),
        );
      };
      // ssh2 emits the client's 'close' before it closes the channels, so a drop is seen
      // here first and is not mistaken for a script that ended without an exit status.
      client.on('close', onLost);

      this.opened++;
      client.exec(command, (err, ch) => {
        if (err) {
          if (this.lostReason !== undefined) return onLost();
          return finish(new HostUnreachableError(this.host, `cannot open a channel on ${this.target}: ${err.message}`));
        }
        channel = ch;
        if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
          const ms = options.timeoutMs;
          timer = setTimeout(() => {
            const out = Buffer.concat(stdout).toString('utf8');
            const errText = Buffer.concat(stderr).toString('utf8');
            finish(new CommandTimeoutError(this.host, ms, out, errText));
            // Ask the server to kill the process (OpenSSH >= 7.9 honours it), then close the
            // channel: sshd closes the pipes, so the remote shell gets EOF/SIGPIPE.
            try {
              channel?.signal('KILL');
            } catch {
              // The channel may already be gone.
            }
            channel?.close();
          }, ms);
        }
        // A decoder, so a UTF-8 character split across two packets reaches onStdout whole.
        const decoder = new StringDecoder('utf8');
        ch.on('data', (chunk: Buffer) => {
          stdout.push(chunk);
          if (options.onStdout) {
            const text = decoder.write(chunk);
            if (text) options.onStdout(text);
          }
        });
        ch.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        ch.on('exit', (c: number | null, sig?: string) => {
          code = c ?? null;
          if (sig) signal = sig;
        });
        ch.on('close', () => finish());
        ch.on('error', (e: Error) => finish(new HostUnreachableError(this.host, `channel error on ${this.target}: ${e.message}`)));
        ch.end(stdin);
      });
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Innermost first: the target travels through the jump hosts' forwarded channels.
    for (const c of [this.init.client, ...[...this.init.jumps].reverse()]) await endClient(c);
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
