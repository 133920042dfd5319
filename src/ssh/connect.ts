// Opening a HostSession: one ssh2 Client per host for the whole run, through its jump hosts
// (ProxyJump, outermost first), each hop with its own host-key check and authentication.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client, ConnectConfig } from 'ssh2';
import { BugError, HostUnreachableError, type KeelError } from '../errors.js';
import type { Connection } from '../inventory/types.js';
import { authFailedError, authHandler, hopCredentials, passingAuthProblem, type AuthState } from './auth.js';
import { formatSeconds } from './errors.js';
import { hopKnownHosts, hostKeyVerifier } from './host-key.js';
import { SshHostSession, watchClose, type SessionInit } from './session.js';
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
  /** Stops a connection still being set up (one opened early that the run no longer wants). */
  signal?: AbortSignal;
}

/** Keepalive every 5 s; 3 unanswered ones mean the peer is dead. */
const KEEPALIVE_INTERVAL_MS = 5000;
const KEEPALIVE_COUNT_MAX = 3;

export function defaultKnownHostsFile(): string {
  return process.env.KEEL_KNOWN_HOSTS ?? join(homedir(), '.ssh', 'known_hosts');
}

export async function connect(opts: ConnectOptions): Promise<HostSession> {
  return new SshHostSession(await openClients(opts));
}

/** The authenticated clients of a host (the target's, and its jump hosts' outermost first),
 *  for a HostSession and for channels of their own (src/ssh/link.ts). */
export async function openClients(opts: ConnectOptions): Promise<SessionInit> {
  const hops = [...opts.connection.jump, opts.connection];
  const clients: Client[] = [];
  try {
    let sock: Duplex | undefined;
    for (const [i, hop] of hops.entries()) {
      const isTarget = i === hops.length - 1;
      const prev = clients[clients.length - 1];
      if (opts.signal?.aborted) throw new HostUnreachableError(opts.hostName, `not connected to ${target(hop)}: stopped`);
      if (prev) sock = await forward(prev, hops[i - 1]!, hop, opts.hostName);
      clients.push(await openHop(hop, isTarget ? '' : 'jump host ', opts, sock));
    }
    return {
      hostName: opts.hostName,
      connection: opts.connection,
      client: clients[clients.length - 1]!,
      jumps: clients.slice(0, -1),
      becomePassword: opts.becomePassword,
      commandTimeoutMs: opts.commandTimeoutMs,
    };
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

/** One hop: its known host keys and its credentials, then the SSH handshake, over `sock` (a
 *  channel from the jump host before it) or TCP. `role` prefixes the hop in messages. */
async function openHop(hop: Connection, role: string, opts: ConnectOptions, sock?: Duplex): Promise<Client> {
  const who = `${role}${target(hop)}`;
  const known = await hopKnownHosts(hop, opts.knownHostsFile, opts.hostName);
  const plan = await hopCredentials(hop, who, opts.hostName);
  const auth: AuthState = { tried: [] };
  let refusal: KeelError | undefined;
  const check = { known, hop, who, hostName: opts.hostName, acceptNewHostKeys: opts.acceptNewHostKeys, onNewHostKey: opts.onNewHostKey };
  const config: ConnectConfig = {
    host: hop.address,
    port: hop.port,
    username: hop.user,
    readyTimeout: hop.connectTimeoutMs,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    hostVerifier: hostKeyVerifier(check, (e) => (refusal = e)),
    authHandler: authHandler(plan, auth),
    ...(sock ? { sock } : {}),
    ...(known.algorithms ? { algorithms: { serverHostKey: known.algorithms as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
  };
  return handshake(config, hop, who, opts.hostName, opts.signal, {
    refusal: () => refusal,
    authFailed: (problems, cause) => authFailedError(hop, who, opts.hostName, plan, auth, problems, cause),
  });
}

/**
 * Connect and wait until authenticated. Every way it can end otherwise becomes one error: the
 * host key's refusal, the credentials refused (with what was tried), or why the connection
 * failed and what to check.
 */
function handshake(
  config: ConnectConfig,
  hop: Connection,
  who: string,
  hostName: string,
  signal: AbortSignal | undefined,
  failures: { refusal: () => KeelError | undefined; authFailed: (problems: string[], cause: Error) => KeelError },
): Promise<Client> {
  const client = new ssh2.Client();
  watchClose(client);
  return new Promise<Client>((resolve, reject) => {
    let settled = false;
    const fail = (e: KeelError) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', stop);
      client.destroy();
      reject(e);
    };
    const stop = () => fail(new HostUnreachableError(hostName, `not connected to ${who}: stopped`));
    signal?.addEventListener('abort', stop, { once: true });
    client.once('ready', () => {
      signal?.removeEventListener('abort', stop);
      if (settled) return;
      settled = true;
      resolve(client);
    });
    // How far the connection got, to tell a silent address from a port that is not sshd.
    let stage: ConnectStage = 'connecting';
    client.once('connect', () => (stage = 'handshake'));
    client.once('handshake', () => (stage = 'authenticating'));
    const authProblems: string[] = [];
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      const refusal = failures.refusal();
      if (refusal) return fail(refusal);
      const problem = passingAuthProblem(err);
      if (problem !== undefined) return void authProblems.push(problem);
      if (err.level === 'client-authentication') return fail(failures.authFailed(authProblems, err));
      fail(connectFailed(err, hop, who, hostName, stage));
    });
    client.once('close', () => {
      fail(
        failures.refusal() ??
          new HostUnreachableError(hostName, `cannot connect to ${who}: the host closed the connection during the handshake`, {
            hint: notSshdHint(hop),
          }),
      );
    });
    try {
      if (signal?.aborted) return stop();
      client.connect(config);
      // Without TCP_NODELAY, each time the handshake sends two packets in a row (KEXINIT and
      // the key exchange, NEWKEYS and the service request) the second waits for the host's
      // delayed ACK: about 40 ms each, 80 ms of a 130 ms connect. Each script sent later is
      // written in several packets too. (A channel from a jump host has no socket option.)
      client.setNoDelay(true);
    } catch (err) {
      fail(new BugError(`invalid ssh2 configuration for ${who}: ${(err as Error).message}`, { cause: err }));
    }
  });
}

function connectFailed(
  err: Error & { level?: string; code?: string },
  hop: Connection,
  who: string,
  hostName: string,
  stage: ConnectStage,
): HostUnreachableError {
  const { why, hint } = describeConnectError(err, hop, stage);
  const down = hop.localTarget && (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' || err.message === 'Connection lost before handshake');
  return new HostUnreachableError(hostName, `cannot connect to ${who}: ${why}`, {
    cause: err,
    hint: down ? `${hop.localTarget} is a local target, and it is not running: \`keel target up ${hop.localTarget}\` starts it again on the same ports` : hint,
  });
}

type ConnectStage = 'connecting' | 'handshake' | 'authenticating';

/** What went wrong, in words, and what to check: the daemon, the port, a firewall, the address. */
export function describeConnectError(err: Error & { level?: string; code?: string }, hop: Connection, stage: ConnectStage): { why: string; hint?: string } {
  const { address, port } = hop;
  const resolveHint = `check the address ${address} in the inventory (or the HostName of its ~/.ssh/config alias): a typo? An IP address needs no DNS`;
  switch (err.code) {
    case 'ECONNREFUSED':
      return {
        why: 'connection refused',
        hint:
          `nothing accepts connections on port ${port} of ${address}: is sshd running there, and listening on port ${port}? ` +
          '(set port: in the inventory if it uses another); a firewall may also refuse them',
      };
    case 'EHOSTUNREACH':
      return { why: 'host unreachable', hint: `no route to ${address}: is the machine up, and is the address right? A firewall on the way may also reject it` };
    case 'ENETUNREACH':
      return {
        why: 'network unreachable',
        hint: `this machine has no route to ${address}'s network: is the address right? Check your network connection or VPN`,
      };
    case 'ENOTFOUND':
      return { why: `cannot resolve ${address}`, hint: resolveHint };
    case 'EAI_AGAIN':
      return {
        why: `cannot resolve ${address} (no answer from DNS)`,
        hint: `check your network and DNS, then run again; or put the IP address in the inventory`,
      };
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
    return (
      `nothing answered at ${address}:${port}: is the address right and the machine up? ` +
      `A firewall may be dropping connections to port ${port}; on a slow link raise connect_timeout in the inventory`
    );
  }
  if (stage === 'handshake') {
    return (
      `port ${port} of ${address} accepted the connection, but no SSH handshake followed: is sshd the service on port ${port}? ` +
      '(set port: in the inventory if sshd uses another); a busy host may also be slow: raise connect_timeout'
    );
  }
  return 'the host is slow to accept the credentials (a slow ssh-agent, or DNS lookups in sshd: UseDNS): raise connect_timeout in the inventory';
}

function notSshdHint(hop: Connection): string {
  return (
    `is sshd the service on port ${hop.port} of ${hop.address}? ` +
    'sshd may also turn this client away (MaxStartups, hosts.deny, fail2ban: its log on the host says why, journalctl -u ssh), ' +
    'or a firewall cut the connection'
  );
}
