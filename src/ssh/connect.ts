// Opening a HostSession: one ssh2 Client per host for the whole run, through its jump hosts
// (ProxyJump, outermost first), each hop with its own host-key check and authentication.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client, ConnectConfig } from 'ssh2';
import { BugError, HostUnreachableError, KeelError } from '../errors.js';
import type { Connection } from '../inventory/types.js';
import { authHandler, KeyFileProblem, PASSPHRASE_ENV, planAuth, type AuthPlan, type AuthState } from './auth.js';
import { formatSeconds, HostKeyError } from './errors.js';
import {
  entriesForHost,
  fingerprint,
  judgeHostKey,
  keyscanCommand,
  keyTypeOfBlob,
  knownHostName,
  loadKnownHosts,
  preferredHostKeyAlgorithms,
  recordHostKey,
  removeKeyCommand,
  type KnownHostEntry,
} from './known-hosts.js';
import { SshHostSession, watchClose } from './session.js';
import type { HostSession } from './types.js';

export interface ConnectOptions {
  /** Inventory name, for messages. */
  hostName: string;
  connection: Connection;
  /** See defaultKnownHostsFile(). */
  knownHostsFile: string;
  /** Trust on first use: record unknown hosts' keys. */
  acceptNewHostKeys: boolean;
  /** sudo password (from the vault or a prompt); never on a command line. */
  becomePassword?: string;
  /** Default timeout for runScript. */
  commandTimeoutMs?: number;
  /** Called after a new host key was recorded (acceptNewHostKeys), with what was added. */
  onNewHostKey?: (message: string) => void;
}

/** Keepalive every 5 s; 3 unanswered ones mean the peer is dead. */
const KEEPALIVE_INTERVAL_MS = 5000;
const KEEPALIVE_COUNT_MAX = 3;

export function defaultKnownHostsFile(): string {
  return process.env.KEEL_KNOWN_HOSTS ?? join(homedir(), '.ssh', 'known_hosts');
}

export async function connect(opts: ConnectOptions): Promise<HostSession> {
  const hops = [...opts.connection.jump, opts.connection];
  const clients: Client[] = [];
  try {
    let sock: Duplex | undefined;
    for (const [i, hop] of hops.entries()) {
      const isTarget = i === hops.length - 1;
      const prev = clients[clients.length - 1];
      if (prev) sock = await forward(prev, hops[i - 1]!, hop, opts.hostName);
      clients.push(await openHop(hop, isTarget ? '' : 'jump host ', opts, sock));
    }
    return new SshHostSession({
      hostName: opts.hostName,
      connection: opts.connection,
      client: clients[clients.length - 1]!,
      jumps: clients.slice(0, -1),
      becomePassword: opts.becomePassword,
      commandTimeoutMs: opts.commandTimeoutMs,
    });
  } catch (err) {
    for (const c of clients.reverse()) c.destroy();
    throw err;
  }
}

function target(c: Connection): string {
  return `${c.user}@${c.address}:${c.port}`;
}

/** Open a channel from the jump host to the next hop, used as that hop's socket. */
function forward(jumpClient: Client, jump: Connection, next: Connection, hostName: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) =>
      reject(
        new HostUnreachableError(hostName, `cannot connect to ${target(next)} through jump host ${target(jump)}: ${why}`, {
          hint:
            `the jump host opens the connection to ${next.address}:${next.port} itself: is sshd running there on port ${next.port}, ` +
            `is that address right as the jump host sees it, and does the jump host's sshd allow forwarding (AllowTcpForwarding)?`,
        }),
      );
    const timer = setTimeout(() => fail(`timed out after ${formatSeconds(next.connectTimeoutMs)}`), next.connectTimeoutMs);
    jumpClient.forwardOut('127.0.0.1', 0, next.address, next.port, (err, stream) => {
      clearTimeout(timer);
      if (err) {
        const detail = err.message.replace(/^\(SSH\) Channel open failure:?\s*/, '').trim();
        return fail(`the jump host could not open a connection to it${detail ? ` (${detail})` : ''}`);
      }
      resolve(stream);
    });
  });
}

async function openHop(hop: Connection, role: string, opts: ConnectOptions, sock?: Duplex): Promise<Client> {
  const who = `${role}${target(hop)}`;
  const file = hop.knownHostsFile ?? opts.knownHostsFile; // a local target has its own
  let entries: KnownHostEntry[];
  try {
    entries = await loadKnownHosts(file);
  } catch (err) {
    throw new HostUnreachableError(opts.hostName, `cannot read known_hosts file ${file}: ${(err as Error).message}`);
  }
  const name = knownHostName(hop.address, hop.port);
  const hostKeyAlgorithms = preferredHostKeyAlgorithms(entriesForHost(entries, name));

  let plan: AuthPlan;
  try {
    plan = await planAuth(hop);
  } catch (err) {
    if (err instanceof KeyFileProblem) {
      throw new HostUnreachableError(opts.hostName, `cannot authenticate to ${who}: ${err.message}`, { hint: err.hint });
    }
    throw err;
  }
  if (!plan.methods.length) {
    const skipped = plan.skipped.length ? ` (skipped: ${plan.skipped.join(', ')})` : '';
    throw new HostUnreachableError(opts.hostName, `no credentials to offer ${who}${skipped}`, {
      hint: `name a key file in the inventory, create ~/.ssh/id_ed25519, or start ssh-agent (SSH_AUTH_SOCK)${
        plan.skipped.length ? ` or set ${PASSPHRASE_ENV}` : ''
      }`,
    });
  }

  const client = new ssh2.Client();
  watchClose(client);
  let refusal: KeelError | undefined;
  const auth: AuthState = { tried: [] };

  const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
    const refuse = (e: KeelError) => {
      refusal = e;
      verify(false);
    };
    const verdict = judgeHostKey(entries, name, key);
    const presented = `${keyTypeOfBlob(key) ?? 'unknown-type'} ${fingerprint(key)}`;
    switch (verdict.kind) {
      case 'known':
        return verify(true);
      case 'revoked':
        return refuse(
          new HostKeyError(
            opts.hostName,
            `${who} presents a REVOKED host key ${presented} (${verdict.entry.file}:${verdict.entry.line}); refusing to connect`,
          ),
        );
      case 'changed': {
        const type = keyTypeOfBlob(key);
        const old = verdict.entries.find((e) => e.keyType === type) ?? verdict.entries[0]!;
        return refuse(
          new HostKeyError(
            opts.hostName,
            `host key for ${who} has CHANGED (or someone is intercepting the connection): ` +
              `the host presents ${presented}, but ${old.file}:${old.line} has ${old.keyType} ${fingerprint(old.key)}; ` +
              'refusing to connect',
            {
              hint: hop.localTarget
                ? `${hop.localTarget} is a local target re-created since keel last read its key: \`keel target up ${hop.localTarget}\` records its current key`
                : 'if the host was reinstalled, remove the old key with ' +
                  `\`${removeKeyCommand(hop.address, hop.port, file)}\` and rerun with --accept-new-host-keys`,
            },
          ),
        );
      }
      case 'unknown':
        if (!opts.acceptNewHostKeys) {
          return refuse(
            new HostKeyError(opts.hostName, `${who} is not in ${file} (its key is ${presented}); refusing to connect`, {
              hint: hop.localTarget
                ? `${hop.localTarget} is a local target re-created since keel last read its key: \`keel target up ${hop.localTarget}\` records its current key`
                : 'rerun with --accept-new-host-keys to trust it on first use, or add it yourself: ' +
                  `\`${keyscanCommand(hop.address, hop.port, file)}\``,
            }),
          );
        }
        recordHostKey(file, name, key).then(
          () => {
            opts.onNewHostKey?.(`${opts.hostName}: added the host key of ${who} to ${file}: ${presented}`);
            verify(true);
          },
          (err: Error) =>
            refuse(new HostUnreachableError(opts.hostName, `cannot record the host key of ${who} in ${file}: ${err.message}`)),
        );
        return;
    }
  };

  const config: ConnectConfig = {
    host: hop.address,
    port: hop.port,
    username: hop.user,
    readyTimeout: hop.connectTimeoutMs,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    hostVerifier,
    authHandler: authHandler(plan, auth),
    ...(sock ? { sock } : {}),
    ...(hostKeyAlgorithms
      ? { algorithms: { serverHostKey: hostKeyAlgorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } }
      : {}),
  };

  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    const fail = (e: KeelError) => {
      if (settled) return;
      settled = true;
      client.destroy();
      reject(e);
    };
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    // How far the connection got, to tell a silent address from a port that is not sshd.
    let stage: ConnectStage = 'connecting';
    client.once('connect', () => (stage = 'handshake'));
    client.once('handshake', () => (stage = 'authenticating'));
    const notes: string[] = [];
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (refusal) return fail(refusal);
      // An unusable agent or a key that cannot sign is reported as an 'error', but ssh2 goes
      // on with the next method: remember it for the message, do not give up yet.
      if (err.level === 'agent' || (err.level === 'client-authentication' && !isFinalAuthFailure(err))) {
        notes.push(err.level === 'agent' ? `ssh-agent: ${err.message}` : err.message);
        return;
      }
      if (err.level === 'client-authentication') {
        const tried = [...auth.tried, ...plan.skipped.map((s) => `${s}, skipped`), ...notes];
        const offered = auth.serverMethods?.length ? `; the host accepts: ${auth.serverMethods.join(', ')}` : '';
        return fail(
          new HostUnreachableError(
            opts.hostName,
            `authentication failed for ${who} (tried: ${tried.join('; ') || 'nothing'}${offered})`,
            {
              cause: err,
              hint: `check that one of these keys is in ~${hop.user}/.ssh/authorized_keys on the host, or set the key file in the inventory`,
            },
          ),
        );
      }
      const { why, hint } = describeConnectError(err, hop, stage);
      const down = hop.localTarget && (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' || err.message === 'Connection lost before handshake');
      fail(new HostUnreachableError(opts.hostName, `cannot connect to ${who}: ${why}`, {
        cause: err,
        hint: down ? `${hop.localTarget} is a local target, and it is not running: \`keel target up ${hop.localTarget}\` starts it again on the same ports` : hint,
      }));
    });
    client.once('close', () => {
      fail(
        refusal ??
          new HostUnreachableError(opts.hostName, `cannot connect to ${who}: the host closed the connection during the handshake`, {
            hint: notSshdHint(hop),
          }),
      );
    });
    try {
      client.connect(config);
    } catch (err) {
      fail(new BugError(`invalid ssh2 configuration for ${who}: ${(err as Error).message}`, { cause: err }));
    }
  });
}

function isFinalAuthFailure(err: Error): boolean {
  return err.message === 'All configured authentication methods failed';
}

type ConnectStage = 'connecting' | 'handshake' | 'authenticating';

/** What went wrong, in words, and what to check: the daemon, the port, a firewall, the address. */
export function describeConnectError(
  err: Error & { level?: string; code?: string },
  hop: Connection,
  stage: ConnectStage,
): { why: string; hint?: string } {
  const { address, port } = hop;
  const resolveHint = `check the address ${address} in the inventory (or the HostName of its ~/.ssh/config alias): a typo? An IP address needs no DNS`;
  switch (err.code) {
    case 'ECONNREFUSED':
      return {
        why: 'connection refused',
        hint: `nothing accepts connections on port ${port} of ${address}: is sshd running there, and listening on port ${port}? (set port: in the inventory if it uses another); a firewall may also refuse them`,
      };
    case 'EHOSTUNREACH':
      return { why: 'host unreachable', hint: `no route to ${address}: is the machine up, and is the address right? A firewall on the way may also reject it` };
    case 'ENETUNREACH':
      return { why: 'network unreachable', hint: `this machine has no route to ${address}'s network: is the address right? Check your network connection or VPN` };
    case 'ENOTFOUND':
      return { why: `cannot resolve ${address}`, hint: resolveHint };
    case 'EAI_AGAIN':
      return { why: `cannot resolve ${address} (no answer from DNS)`, hint: `check your network and DNS, then run again; or put the IP address in the inventory` };
    case 'ETIMEDOUT':
      return { why: 'timed out', hint: timeoutHint(hop, 'connecting') };
    case 'ECONNRESET':
      return { why: 'connection reset by the host', hint: notSshdHint(hop) };
  }
  if (err.level === 'client-dns') return { why: `cannot resolve ${address}`, hint: resolveHint };
  if (err.level === 'client-timeout') {
    const waiting = { connecting: ' (no answer)', handshake: ' waiting for the SSH handshake', authenticating: ' while authenticating' }[stage];
    return { why: `timed out after ${formatSeconds(hop.connectTimeoutMs)}${waiting}`, hint: timeoutHint(hop, stage) };
  }
  if (err.message === 'Connection lost before handshake') {
    return { why: 'the host closed the connection before the SSH handshake', hint: notSshdHint(hop) };
  }
  return { why: err.message };
}

function timeoutHint(hop: Connection, stage: ConnectStage): string {
  const { address, port } = hop;
  if (stage === 'connecting') {
    return `nothing answered at ${address}:${port}: is the address right and the machine up? A firewall may be dropping connections to port ${port}; on a slow link raise connect_timeout in the inventory`;
  }
  if (stage === 'handshake') {
    return `port ${port} of ${address} accepted the connection, but no SSH handshake followed: is sshd the service on port ${port}? (set port: in the inventory if sshd uses another); a busy host may also be slow: raise connect_timeout`;
  }
  return 'the host is slow to accept the credentials (a slow ssh-agent, or DNS lookups in sshd: UseDNS): raise connect_timeout in the inventory';
}

function notSshdHint(hop: Connection): string {
  return `is sshd the service on port ${hop.port} of ${hop.address}? sshd may also turn this client away (MaxStartups, hosts.deny, fail2ban: its log on the host says why, journalctl -u ssh), or a firewall cut the connection`;
}
