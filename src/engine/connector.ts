// How the engine opens a host's session for a run: ssh2 with the inventory's connection, the
// known_hosts of the inventory, and the sudo password from -K or the vault.
import type { Vars } from '../inventory/types.js';
import { connect, defaultKnownHostsFile } from '../ssh/connect.js';
import type { HostSession } from '../ssh/types.js';
import type { HostPlan } from './plan.js';
import type { PreparedRun } from './pipeline.js';

export interface ConnectorOptions {
  acceptNewHostKeys?: boolean;
  /** Typed at a -K prompt: beats become_password. */
  askedPassword?: string;
  /** A key was recorded in known_hosts (--accept-new-host-keys): say which. */
  onNewHostKey?: (message: string) => void;
}

export function sshConnector(prepared: PreparedRun, o: ConnectorOptions): (plan: HostPlan) => Promise<HostSession> {
  const knownHostsFile = prepared.inventory.knownHostsFile ?? defaultKnownHostsFile();
  return (plan) =>
    connect({
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
