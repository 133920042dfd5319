// Each hop's host key, checked against known_hosts before any credential is sent: a known key
// goes on; a changed or revoked one is refused, and so is an unknown one unless the run trusts
// new keys (then it is recorded). A refusal says what to do about it.
import { HostUnreachableError, type KeelError } from '../errors.js';
import type { Connection } from '../inventory/types.js';
import { HostKeyError } from './errors.js';
import {
  entriesForHost,
  fingerprint,
  hostFieldMatches,
  judgeHostKey,
  keyscanCommand,
  keyTypeOfBlob,
  knownHostName,
  loadKnownHosts,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  recordHostKey,
  removeKeyCommand,
  type HostKeyVerdict,
  type KnownHostEntry,
} from './known-hosts.js';

/** What a hop's key is checked against. */
export interface HopKnownHosts {
  file: string;
  /** The hop as known_hosts names it: `addr`, or `[addr]:port`. */
  name: string;
  /** Revocations and the entries of this host (all judgeHostKey needs). */
  entries: KnownHostEntry[];
  /** Host key algorithms to ask for, the types already known first (see preferredHostKeyAlgorithms). */
  algorithms?: string[];
}

/** One hop's check. */
export interface HopKeyCheck {
  known: HopKnownHosts;
  hop: Connection;
  /** The hop, for messages: `jump host app@10.0.0.5:22`. */
  who: string;
  /** Inventory name, for messages. */
  hostName: string;
  /** Trust on first use: record an unknown key (and tell onNewHostKey). */
  acceptNewHostKeys: boolean;
  onNewHostKey?: (message: string) => void;
}

/** known_hosts lines themselves (not a file), for CI: a secret becomes this variable. */
export const KNOWN_HOSTS_ENV = 'KEEL_SSH_KNOWN_HOSTS';

export async function hopKnownHosts(hop: Connection, defaultFile: string, hostName: string, env: NodeJS.ProcessEnv = process.env): Promise<HopKnownHosts> {
  const file = hop.knownHostsFile ?? defaultFile; // a local target has its own
  let entries: KnownHostEntry[];
  try {
    entries = await loadKnownHosts(file);
  } catch (err) {
    throw new HostUnreachableError(hostName, `cannot read known_hosts file ${file}: ${(err as Error).message}`);
  }
  if (env[KNOWN_HOSTS_ENV]) entries = [...entries, ...parseKnownHosts(env[KNOWN_HOSTS_ENV], `$${KNOWN_HOSTS_ENV}`)];
  const name = knownHostName(hop.address, hop.port);
  // What judgeHostKey looks at: revocations (of any host) and this host's entries. Only those
  // are kept for the connection's lifetime, not the whole file per host.
  const relevant = entries.filter((e) => e.marker === 'revoked' || (e.marker === undefined && hostFieldMatches(e.hosts, name)));
  return { file, name, entries: relevant, algorithms: preferredHostKeyAlgorithms(entriesForHost(relevant, name)) };
}

/**
 * An ssh2 hostVerifier for one hop. A key it refuses goes to `refuse` first: ssh2 then only
 * reports a failed handshake, and the connection fails with the refusal instead.
 */
export function hostKeyVerifier(check: HopKeyCheck, refuse: (e: KeelError) => void): (key: Buffer, verify: (ok: boolean) => void) => void {
  const { known, who, hostName } = check;
  return (key, verify) => {
    const verdict = judgeHostKey(known.entries, known.name, key);
    if (verdict.kind === 'known') return verify(true);
    if (verdict.kind === 'unknown' && check.acceptNewHostKeys) {
      recordHostKey(known.file, known.name, key).then(
        () => {
          check.onNewHostKey?.(`${hostName}: added the host key of ${who} to ${known.file}: ${presented(key)}`);
          verify(true);
        },
        (err: Error) => {
          refuse(new HostUnreachableError(hostName, `cannot record the host key of ${who} in ${known.file}: ${err.message}`));
          verify(false);
        },
      );
      return;
    }
    refuse(refusal(verdict, key, check));
    verify(false);
  };
}

function presented(key: Buffer): string {
  return `${keyTypeOfBlob(key) ?? 'unknown-type'} ${fingerprint(key)}`;
}

function refusal(verdict: Exclude<HostKeyVerdict, { kind: 'known' }>, key: Buffer, { known: { file }, hop, who, hostName }: HopKeyCheck): HostKeyError {
  // A local target is re-created with a new key: `keel target up` records it.
  const recreated = hop.localTarget
    ? `${hop.localTarget} is a local target re-created since keel last read its key: \`keel target up ${hop.localTarget}\` records its current key`
    : undefined;
  switch (verdict.kind) {
    case 'revoked':
      return new HostKeyError(
        hostName,
        `${who} presents a REVOKED host key ${presented(key)} (${verdict.entry.file}:${verdict.entry.line}); refusing to connect`,
      );
    case 'changed': {
      const type = keyTypeOfBlob(key);
      const old = verdict.entries.find((e) => e.keyType === type) ?? verdict.entries[0]!;
      return new HostKeyError(
        hostName,
        `host key for ${who} has CHANGED (or someone is intercepting the connection): ` +
          `the host presents ${presented(key)}, but ${old.file}:${old.line} has ${old.keyType} ${fingerprint(old.key)}; ` +
          'refusing to connect',
        {
          hint:
            recreated ??
            'if the host was reinstalled, remove the old key with ' +
              `\`${removeKeyCommand(hop.address, hop.port, file)}\` and rerun with --accept-new-host-keys`,
        },
      );
    }
    case 'unknown': {
      const where = process.env[KNOWN_HOSTS_ENV] ? `${file} nor in $${KNOWN_HOSTS_ENV}` : file;
      return new HostKeyError(hostName, `${who} is not in ${where} (its key is ${presented(key)}); refusing to connect`, {
        hint:
          recreated ??
          'rerun with --accept-new-host-keys to trust it on first use, or add it yourself: ' +
            `\`${keyscanCommand(hop.address, hop.port, file)}\`; in CI, put those lines in $${KNOWN_HOSTS_ENV} (from a secret)`,
      });
    }
  }
}
