// The age container: what the header says (without any key) and encryption/decryption with
// errors that say what went wrong (wrong key, tampered, truncated, not an age file).
// Passphrase stanzas go through scrypt-stanza.ts (native scrypt); X25519 stays with
// age-encryption, which already uses Node's WebCrypto for it.
import { createHash } from 'node:crypto';
import { Decrypter, Encrypter, armor, type Identity } from 'age-encryption';
import { ConfigError } from '../errors.js';
import { type ScryptKdf, ScryptStanzaIdentity, ScryptStanzaRecipient, StanzaError } from './scrypt-stanza.js';

export interface HeaderInfo {
  x25519: number;
  scrypt: number;
  /** Stanza types keel does not handle (age1pq, plugins...). */
  other: string[];
  /** Bytes from the start of the file to the end of the MAC line, newline included. */
  length: number;
}

const MAGIC = 'age-encryption.org/v1';
const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';

/** Binary age bytes, whether the file is binary or ASCII-armored. */
export function unarmor(bytes: Uint8Array, display: string): Uint8Array {
  const head = Buffer.from(bytes.subarray(0, ARMOR_BEGIN.length)).toString('latin1');
  if (head !== ARMOR_BEGIN) return bytes;
  try {
    return armor.decode(Buffer.from(bytes).toString('latin1'));
  } catch {
    throw new ConfigError(`${display} is truncated or corrupted (bad ASCII armor)`);
  }
}

/** Reads the recipient stanzas of an age header. Throws a ConfigError for non-age input. */
export function inspectHeader(bytes: Uint8Array, display: string): HeaderInfo {
  const text = Buffer.from(bytes.subarray(0, Math.min(bytes.length, 64 * 1024))).toString('latin1');
  if (!text.startsWith(MAGIC + '\n')) {
    const hint = text.startsWith('$ANSIBLE_VAULT') ? `it is an Ansible Vault file: run keel secrets import-ansible <env> ${display}` : undefined;
    throw new ConfigError(`${display} is not a keel vault (not an age-encrypted file)`, undefined, { hint });
  }
  const info: HeaderInfo = { x25519: 0, scrypt: 0, other: [], length: 0 };
  const lines = text.split('\n');
  let offset = lines[0]!.length + 1;
  for (let i = 1; i < lines.length - 1; i++) {
    const line = lines[i]!;
    offset += line.length + 1;
    if (line.startsWith('--- ')) return { ...info, length: offset };
    if (line.startsWith('-> ')) {
      const type = line.split(' ')[1] ?? '';
      if (type === 'X25519') info.x25519++;
      else if (type === 'scrypt') info.scrypt++;
      else info.other.push(type);
    }
  }
  throw new ConfigError(`${display} is truncated or corrupted (the age header does not end)`);
}

export function describeHeader(h: HeaderInfo): string {
  if (h.scrypt) return 'encrypted with a passphrase (scrypt)';
  const parts: string[] = [];
  if (h.x25519) parts.push(`${h.x25519} X25519 recipient(s)`);
  if (h.other.length) parts.push(`${h.other.length} recipient(s) of other types (${[...new Set(h.other)].join(', ')})`);
  return `encrypted to ${parts.join(' and ') || 'no recipients'}`;
}

/** A hash of the header (stanzas and MAC): it changes whenever the file key or the way it is
 *  wrapped changes, i.e. on every save, so it tells whether an unlocked key still fits. */
export function headerDigest(bytes: Uint8Array, header: HeaderInfo): string {
  return createHash('sha256').update(bytes.subarray(0, header.length)).digest('hex');
}

export type EncryptTarget = { passphrase: string; logN?: number } | { recipients: string[] };

export interface Encrypted {
  bytes: Uint8Array;
  /** For passphrase files: the new file key (to refresh an unlocked key). Zero it after use. */
  fileKey?: Uint8Array;
}

export async function encryptText(text: string, target: EncryptTarget, kdf?: ScryptKdf): Promise<Encrypted> {
  const e = new Encrypter();
  if ('passphrase' in target) {
    const r = new ScryptStanzaRecipient(target.passphrase, target.logN, kdf);
    e.addRecipient(r);
    return { bytes: await throughStreams((s) => e.encrypt(s), new TextEncoder().encode(text)), fileKey: r.lastFileKey };
  }
  if (!target.recipients.length) throw new ConfigError('no recipients to encrypt to');
  for (const r of target.recipients) e.addRecipient(r);
  return { bytes: await throughStreams((s) => e.encrypt(s), new TextEncoder().encode(text)) };
}

// age-encryption reads a whole Uint8Array result through `new Response(stream)`, and the first
// Response loads Node's fetch (undici): about 25 ms of every run that opens the vault. Given a
// stream, it returns one, read here.
async function throughStreams(op: (input: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>, bytes: Uint8Array): Promise<Uint8Array> {
  return readStream(await op(streamOf(bytes)));
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

async function readStream(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
  // Its own memory (not Buffer's shared pool), so that the caller's fill(0) wipes it.
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
    c.fill(0);
  }
  return out;
}

export type Credential =
  | { kind: 'passphrase'; secret: string; source: string }
  | { kind: 'identity'; secret: string[]; source: string }
  /** A file key kept by `keel secrets unlock` (key-cache.ts). */
  | { kind: 'filekey'; secret: Uint8Array; source: string };

function decrypterFor(cred: Credential, kdf?: ScryptKdf): Decrypter {
  const d = new Decrypter();
  if (cred.kind === 'passphrase') d.addIdentity(new ScryptStanzaIdentity(cred.secret, kdf));
  else if (cred.kind === 'identity') for (const id of cred.secret) d.addIdentity(id);
  else {
    const known: Identity = { unwrapFileKey: () => Uint8Array.from(cred.secret) };
    d.addIdentity(known);
  }
  return d;
}

/** Decrypts with one credential: the plaintext, or null when the credential does not fit.
 *  Damage (bad MAC, truncation) throws a ConfigError, never quoting any content. */
export async function decryptWith(bytes: Uint8Array, cred: Credential, display: string, kdf?: ScryptKdf): Promise<string | null> {
  let plain: Uint8Array;
  try {
    const d = decrypterFor(cred, kdf);
    plain = await throughStreams((s) => d.decrypt(s), bytes);
  } catch (err) {
    const known = ageError(err, display);
    if (known === null) return null;
    throw known;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new ConfigError(`${display} decrypts, but not to UTF-8 text: it is not a keel vault`);
  } finally {
    plain.fill(0);
  }
}

/** The file key of an age file, checked against the header MAC, without touching the payload
 *  (what `keel secrets unlock` keeps). Null when the credential does not fit. */
export async function unwrapFileKey(bytes: Uint8Array, header: HeaderInfo, cred: Credential, display: string, kdf?: ScryptKdf): Promise<Uint8Array | null> {
  try {
    return await decrypterFor(cred, kdf).decryptHeader(bytes.subarray(0, header.length));
  } catch (err) {
    const known = ageError(err, display);
    if (known === null) return null;
    throw known;
  }
}

/** age-encryption's errors (plain Errors told apart by message) and ours as ConfigErrors;
 *  null for "this credential does not fit". */
function ageError(err: unknown, display: string): ConfigError | null {
  const msg = err instanceof Error ? err.message : String(err);
  if (msg.includes('no identity matched')) return null;
  if (msg.includes('invalid header HMAC')) {
    return new ConfigError(`${display} has been tampered with or corrupted (the header MAC does not match)`);
  }
  if (msg.includes('work factor is too high')) {
    return new ConfigError(`${display} uses an scrypt work factor above 20, which keel refuses`);
  }
  if (err instanceof StanzaError || /invalid (stanza|header|version)|scrypt stanza|X25519 stanza/.test(msg)) {
    return new ConfigError(`${display} is truncated or corrupted (invalid age header)`);
  }
  return new ConfigError(`${display} is truncated or has been tampered with (the encrypted payload does not authenticate)`);
}
