// OpenSSH known_hosts: parsing, matching and trust-on-first-use recording. ssh2 accepts any
// host key unless a verifier says otherwise, so every connection goes through
// `hostKeyVerifier` (host-key.ts).
import { createHash, createHmac } from 'node:crypto';
import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sh } from '../shell/quote.js';

export interface KnownHostEntry {
  file: string;
  /** 1-based line in the file, for messages. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** The host field as written: patterns, comma lists or one `|1|salt|hmac` hash. */
  hosts: string;
  keyType: string;
  /** The key blob (SSH wire format), decoded from the base64 field. */
  key: Buffer;
}

/** Parse known_hosts text. Lines that cannot be entries (bad base64, too few fields) are skipped. */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) return;
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      // Host certificates are not supported: such lines name a CA key, not the host's own key,
      // so they can neither vouch for nor contradict a plain host key. They are ignored.
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return;
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    const key = Buffer.from(b64, 'base64');
    if (keyTypeOfBlob(key) !== keyType) return;
    entries.push({ file, line: i + 1, marker, hosts, keyType, key });
  });
  return entries;
}

/** Parsed files, while unchanged: a run connects to each of its hosts, and parsing the whole
 *  file per host cost O(hosts × lines) (a 1,000-line file and 1,000 hosts: seconds of CPU). */
const parsed = new Map<string, { version: string; entries: Promise<KnownHostEntry[]> }>();

/** The file's entries (shared: do not change them). Read again once the file changed (a key
 *  recorded by --accept-new-host-keys, an edit). */
export async function loadKnownHosts(file: string): Promise<KnownHostEntry[]> {
  let version: string;
  try {
    const st = await stat(file);
    version = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const cached = parsed.get(file);
  if (cached?.version === version) return cached.entries;
  const entries = readFile(file, 'utf8').then(
    (text) => parseKnownHosts(text, file),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    },
  );
  parsed.set(file, { version, entries });
  entries.catch(() => parsed.delete(file));
  return entries;
}

/** How OpenSSH names a host in known_hosts: `addr` on port 22, `[addr]:port` otherwise. */
export function knownHostName(address: string, port: number): string {
  const a = address.toLowerCase();
  return port === 22 ? a : `[${a}]:${port}`;
}

/** Does the host field of an entry match the name (from `knownHostName`)? */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const pattern of field.toLowerCase().split(',')) {
    const negated = pattern.startsWith('!');
    if (globMatches(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function globMatches(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOfBlob(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return undefined;
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:...` as OpenSSH prints it (base64 without padding). */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export type HostKeyVerdict =
  | { kind: 'known'; entry: KnownHostEntry }
  | { kind: 'revoked'; entry: KnownHostEntry }
  | { kind: 'changed'; entries: KnownHostEntry[] }
  | { kind: 'unknown' };

/** Entries that say something about this host's own keys (not revocations, not CAs). */
export function entriesForHost(entries: KnownHostEntry[], name: string): KnownHostEntry[] {
  return entries.filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, name));
}

export function judgeHostKey(entries: KnownHostEntry[], name: string, key: Buffer): HostKeyVerdict {
  // A revoked key is refused whatever host field it was listed under, as OpenSSH does.
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { kind: 'revoked', entry: revoked };
  const forHost = entriesForHost(entries, name);
  const same = forHost.find((e) => e.key.equals(key));
  if (same) return { kind: 'known', entry: same };
  return forHost.length ? { kind: 'changed', entries: forHost } : { kind: 'unknown' };
}

// ssh2's default host key algorithm order (ssh2 1.x, with Ed25519 support).
const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * Host key algorithms to offer, types already recorded for the host first. Without this a
 * host known by its RSA key but offering Ed25519 first would look "changed". Undefined when
 * nothing is known (ssh2's defaults then apply).
 */
export function preferredHostKeyAlgorithms(known: KnownHostEntry[]): string[] | undefined {
  const first: string[] = [];
  for (const e of known) {
    for (const algo of ALGORITHMS_FOR_KEY_TYPE[e.keyType] ?? [e.keyType]) {
      if (DEFAULT_HOST_KEY_ALGORITHMS.includes(algo) && !first.includes(algo)) first.push(algo);
    }
  }
  if (!first.length) return undefined;
  return [...first, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

/** Append `name type base64` to the file, creating it (0600) and its folder (0700) if missing. */
export async function recordHostKey(file: string, name: string, key: Buffer): Promise<void> {
  const type = keyTypeOfBlob(key);
  if (!type) throw new Error('the server sent a malformed host key');
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const st = await stat(file);
    if (st.size > 0) {
      const text = await readFile(file);
      if (text[text.length - 1] !== 0x0a) prefix = '\n';
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await appendFile(file, `${prefix}${name} ${type} ${key.toString('base64')}\n`, { mode: 0o600 });
}

/** The exact commands a user can run to trust a host by hand. */
export function keyscanCommand(address: string, port: number, file: string): string {
  return sh`ssh-keyscan -p ${port} ${address} >> ${file}`.text;
}

export function removeKeyCommand(address: string, port: number, file: string): string {
  return sh`ssh-keygen -R ${knownHostName(address, port)} -f ${file}`.text;
}
