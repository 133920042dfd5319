// Connections opened while a run is still being prepared: as soon as the inventory says which
// hosts and how to reach them, their SSH handshakes start, and go on while the vault opens and
// the roles compile. For a small no-op the handshake was the longest part after start-up, all
// of it spent waiting. The run takes each connection when it starts on that host (connector.ts);
// one it never takes (the preparation failed, the run was interrupted) is closed unused: no
// script ever ran on it. An early connection that failed fails the run's connect to that host
// with the same error, when the run gets there.
//
// Only when nothing may stop the run between preparing and connecting in a way the user would
// expect to leave the hosts alone (a confirmation, a sudo password prompt), and never when a
// new host key would be recorded (--accept-new-host-keys): the caller decides.
import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import type { Host } from '../inventory/types.js';
import { openClients, type ConnectOptions } from '../ssh/connect.js';
import type { SessionInit } from '../ssh/session.js';
import { waitEnd, waitStart } from '../timing.js';
import { CONNECTS_AT_ONCE } from './connector.js';

interface Early {
  clients: Promise<SessionInit>;
  /** The connection closed before the run took it. */
  closed: boolean;
}

export class EarlyConnections {
  /** Shared with the run's own connects: at most CONNECTS_AT_ONCE handshakes in all. */
  readonly gate = pLimit(CONNECTS_AT_ONCE);
  private readonly pending = new Map<string, Early>();
  /** Aborts the handshakes still going on when the run closes them (else the process would
   *  wait for them, for an unreachable host up to its connect timeout, before it exits). */
  private readonly stop = new AbortController();

  constructor() {
    setMaxListeners(0, this.stop.signal); // one listener per handshake going on
  }

  /** Start connecting to `hosts` (the first `forks` of them: the ones a run starts with). */
  start(hosts: Host[], knownHostsFile: string, forks?: number): void {
    if (this.stop.signal.aborted) return;
    for (const host of hosts.slice(0, forks ?? hosts.length)) {
      const early: Early = { closed: false, clients: Promise.resolve(undefined as never) };
      early.clients = this.gate(async () => {
        if (this.stop.signal.aborted) throw new Error('not connected: the run stopped first');
        waitStart('connect', host.name);
        try {
          const init = await openClients({
            hostName: host.name,
            connection: host.connection,
            knownHostsFile,
            acceptNewHostKeys: false,
            signal: this.stop.signal,
          });
          for (const c of [init.client, ...init.jumps]) c.once('close', () => (early.closed = true));
          return init;
        } finally {
          waitEnd('connect', host.name);
        }
      });
      early.clients.catch(() => undefined); // the run's error when it takes it; none if it never does
      this.pending.set(host.name, early);
    }
  }

  /** The early connection to `host`, once: the clients, with the options the run connects with
   *  (its sudo password, known only once the vault is open). Undefined when there is none, or
   *  it closed before the run took it: the run connects as usual. */
  async take(host: string, options: ConnectOptions): Promise<SessionInit | undefined> {
    const early = this.pending.get(host);
    this.pending.delete(host);
    if (!early) return undefined;
    const init = await early.clients;
    if (early.closed) return undefined;
    return { ...init, becomePassword: options.becomePassword, commandTimeoutMs: options.commandTimeoutMs };
  }

  has(host: string): boolean {
    return this.pending.has(host);
  }

  /** Close every connection the run did not take. */
  close(): void {
    this.stop.abort();
    for (const early of this.pending.values()) {
      early.clients.then(
        (init) => [...init.jumps, init.client].reverse().forEach((c) => c.end()),
        () => undefined,
      );
    }
    this.pending.clear();
  }
}
