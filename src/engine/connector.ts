// How the engine opens a host's session for a run: ssh2 with the inventory's connection, the
// known_hosts of the inventory, and the sudo password from -K or the vault.
import pLimit from 'p-limit';
import type { Vars } from '../inventory/types.js';
import { connect, defaultKnownHostsFile, type ConnectOptions } from '../ssh/connect.js';
import { SshHostSession } from '../ssh/session.js';
import type { HostSession } from '../ssh/types.js';
import type { EarlyConnections } from './early-connections.js';
import type { HostPlan } from './plan.js';
import type { PreparedRun } from './pipeline.js';
import { waitEnd, waitStart } from '../timing.js';

export interface ConnectorOptions {
  acceptNewHostKeys?: boolean;
  /** Typed at a -K prompt: beats become_password. */
  askedPassword?: string;
  /** A key was recorded in known_hosts (--accept-new-host-keys): say which. */
  onNewHostKey?: (message: string) => void;
  /** Connections opened while the run was prepared (early-connections.ts), taken first. */
  early?: EarlyConnections;
}

/**
 * Connections being set up at once (TCP, key exchange, authentication, the remote shell): a
 * run against hundreds of hosts still works on every host at once, but a thousand handshakes
 * started together share the CPU so thinly that some miss their connect timeout.
 */
export const CONNECTS_AT_ONCE = 64;

export function sshConnector(prepared: PreparedRun, o: ConnectorOptions): (plan: HostPlan) => Promise<HostSession> {
  const options = connectOptions(prepared, o);
  const gate = o.early?.gate ?? pLimit(CONNECTS_AT_ONCE);
  const fresh = (opts: ConnectOptions) =>
    gate(async () => {
      waitStart('connect', opts.hostName);
      try {
        return await connect(opts);
      } finally {
        waitEnd('connect', opts.hostName);
      }
    });
  return async (plan) => {
    const opts = options(plan);
    const early = o.early?.has(plan.host.name) ? await o.early.take(plan.host.name, opts) : undefined;
    return early ? sessionOf(early) : fresh(opts);
  };
}

/** A session on clients opened early; closed again if it cannot be made (a bad sudo password). */
function sessionOf(init: ConstructorParameters<typeof SshHostSession>[0]): HostSession {
  try {
    return new SshHostSession(init);
  } catch (err) {
    for (const c of [init.client, ...init.jumps]) c.end();
    throw err;
  }
}

/** How to connect to a host of the run: its connection, known_hosts and sudo password. */
export function connectOptions(prepared: PreparedRun, o: ConnectorOptions): (plan: HostPlan) => ConnectOptions {
  const knownHostsFile = prepared.inventory.knownHostsFile ?? defaultKnownHostsFile();
  return (plan) => ({
    hostName: plan.host.name,
    connection: plan.host.connection,
    knownHostsFile,
    acceptNewHostKeys: !!o.acceptNewHostKeys,
    becomePassword: o.askedPassword ?? becomePassword(plan, prepared.secrets),
    onNewHostKey: o.onNewHostKey,
  });
}

function becomePassword(plan: HostPlan, secrets: Vars): string | undefined {
  const c = plan.host.connection;
  if (!c.become) return undefined;
  const name = c.becomePasswordVar ?? 'become_password';
  const v = plan.vars[name] ?? secrets[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Connections opened ahead of the phases that use them (before a long local build, so that a
 *  missing key or host key fails the run in a second, not after the build). Each session is
 *  handed to the first caller of `connect` for its host; `close` closes those never handed out. */
export function preconnect(connect: (plan: HostPlan) => Promise<HostSession>): {
  connect: (plan: HostPlan) => Promise<HostSession>;
  open: (plans: HostPlan[]) => Promise<void>;
  close: () => Promise<void>;
} {
  const ahead = new Map<string, Promise<HostSession>>();
  return {
    connect: (plan) => {
      const s = ahead.get(plan.host.name);
      ahead.delete(plan.host.name);
      return s ?? connect(plan);
    },
    open: async (plans) => {
      for (const p of plans) {
        const s = connect(p);
        s.catch(() => undefined);
        ahead.set(p.host.name, s);
      }
      // The first failure, as connecting would report it (it names the host and what to fix).
      for (const s of [...ahead.values()]) await s;
    },
    close: async () => {
      const left = [...ahead.values()];
      ahead.clear();
      await Promise.all(left.map((s) => s.then((x) => x.close()).catch(() => undefined)));
    },
  };
}
