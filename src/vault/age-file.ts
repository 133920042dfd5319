// The age container: what the header says (without any key) and encryption/decryption with
// errors that say what went wrong (wrong key, tampered, truncated, not an age file).
// Passphrase stanzas go through scrypt-stanza.ts (native scrypt); X25519 stays with
// age-encryption, which already uses Node's WebCrypto for it.
import { Decrypter, Encrypter, armor } from 'age-encryption';
import { ConfigError } from '../errors.js';
import { type ScryptKdf, ScryptStanzaIdentity, ScryptStanzaRecipient, StanzaError } from './scrypt-stanza.js';

export interface HeaderInfo {
  x25519: number;
  scrypt: number;
  /** Stanza types keel does not handle (age1pq, plugins...). */
  other: string[];
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
    const hint = text.startsWith('$ANSIBLE_VAULT')
      ? `it is an Ansible Vault file: run keel secrets import-ansible <env> ${display}`
      : undefined;
    throw new ConfigError(`${display} is not a keel vault (not an age-encrypted file)`, undefined, { hint });
  }
  const info: HeaderInfo = { x25519: 0, scrypt: 0, other: [] };
  const lines = text.split('\n');
  for (let i = 1; i < lines.length - 1; i++) {
    const line = lines[i]!;
    if (line.startsWith('--- ')) return info;
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

export type EncryptTarget = { passphrase: string; logN?: number } | { recipients: string[] };

export async function encryptText(text: string, target: EncryptTarget, kdf?: ScryptKdf): Promise<Uint8Array> {
  const e = new Encrypter();
  if ('passphrase' in target) {
    e.addRecipient(new ScryptStanzaRecipient(target.passphrase, target.logN, kdf));
  } else {
    if (!target.recipients.length) throw new ConfigError('no recipients to encrypt to');
    for (const r of target.recipients) e.addRecipient(r);
  }
  return e.encrypt(text);
}

export type Credential =
  | { kind: 'passphrase'; secret: string; source: string }
  | { kind: 'identity'; secret: string[]; source: string };

/** Decrypts with one credential: the plaintext, or null when the credential does not fit.
 *  Damage (bad MAC, truncation) throws a ConfigError, never quoting any content. */
export async function decryptWith(bytes: Uint8Array, cred: Credential, display: string, kdf?: ScryptKdf): Promise<string | null> {
  const d = new Decrypter();
  if (cred.kind === 'passphrase') d.addIdentity(new ScryptStanzaIdentity(cred.secret, kdf));
  else for (const id of cred.secret) d.addIdentity(id);
  let plain: Uint8Array;
  try {
    plain = await d.decrypt(bytes);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (msg.includes('no identity matched')) return null;
    if (msg.includes('invalid header HMAC')) {
      throw new ConfigError(`${display} has been tampered with or corrupted (the header MAC does not match)`);
    }
    if (msg.includes('work factor is too high')) {
      throw new ConfigError(`${display} uses an scrypt work factor above 20, which keel refuses`);
    }
    if (err instanceof StanzaError || /invalid (stanza|header|version)|scrypt stanza|X25519 stanza/.test(msg)) {
      throw new ConfigError(`${display} is truncated or corrupted (invalid age header)`);
    }
    throw new ConfigError(`${display} is truncated or has been tampered with (the encrypted payload does not authenticate)`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new ConfigError(`${display} decrypts, but not to UTF-8 text: it is not a keel vault`);
  } finally {
    plain.fill(0);
  }
}
