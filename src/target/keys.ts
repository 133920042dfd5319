// The client key keel logs into local targets with, and the known_hosts that lets it trust
// their host keys honestly: each key is read from inside the container through the engine,
// a channel that does not depend on the network path being tested.
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import ssh2 from 'ssh2';
import { ConfigError } from '../errors.js';

export interface ClientKey {
  privateKeyFile: string;
  /** One line, `ssh-ed25519 AAAA... comment`. */
  publicKey: string;
}

/**
 * A new ed25519 private key in OpenSSH format. ssh2's generator makes a key its own parser
 * rejects about once in 256 tries (mscdex/ssh2#1390), so draw again until it parses.
 */
export function newEd25519PrivateKey(comment = 'keel'): string {
  for (let i = 0; i < 16; i++) {
    const key = ssh2.utils.generateKeyPairSync('ed25519', { comment }).private;
    const parsed = ssh2.utils.parseKey(key);
    if (!(parsed instanceof Error) && !Array.isArray(parsed) && parsed.isPrivateKey()) return key;
  }
  throw new Error('could not generate a parseable ed25519 key in 16 tries');
}

/**
 * Generate an ed25519 key pair at `file` (+ `.pub`) unless the private key exists; returns it.
 * Safe when several processes race: the first private key linked into place wins, and the
 * `.pub` is always derived from the private key on disk, so the halves cannot mismatch.
 */
export async function ensureClientKey(file: string, comment = 'keel-target'): Promise<ClientKey> {
  let privateKey = await readIfExists(file);
  if (privateKey === undefined) {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = tempName(file);
    await writeFile(tmp, newEd25519PrivateKey(comment), { mode: 0o600 });
    try {
      await link(tmp, file); // fails with EEXIST if another process got there first
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(tmp);
    }
    privateKey = (await readIfExists(file))!;
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey()) {
    throw new ConfigError('not a usable OpenSSH private key (remove it to have a new one made)', { file });
  }
  const publicKey = `${parsed.type} ${parsed.getPublicSSH().toString('base64')} ${comment}`;
  if ((await readIfExists(`${file}.pub`))?.trim() !== publicKey) {
    await writeAtomic(`${file}.pub`, `${publicKey}\n`, 0o644);
  }
  return { privateKeyFile: file, publicKey };
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function tempName(file: string): string {
  return join(dirname(file), `.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** `ssh-ed25519 AAAA... root@x` → `ssh-ed25519 AAAA...` (throws on anything else). */
export function parsePublicKeyLine(text: string): { type: string; base64: string } {
  const m = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+)\s+([A-Za-z0-9+/=]+)(\s|$)/.exec(text.trim());
  if (!m) throw new Error(`not an OpenSSH public key line: ${JSON.stringify(text.slice(0, 80))}`);
  return { type: m[1]!, base64: m[2]! };
}

/** One known_hosts line for a host key reached at address:port. */
export function knownHostsLine(address: string, port: number, publicKey: string): string {
  const { type, base64 } = parsePublicKeyLine(publicKey);
  const host = port === 22 ? address : `[${address}]:${port}`;
  return `${host} ${type} ${base64}`;
}

/** Write a file through a temp file and a rename, so readers never see half of it. */
export async function writeAtomic(file: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = tempName(file);
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode); // the umask may have narrowed it
  await rename(tmp, file);
}
