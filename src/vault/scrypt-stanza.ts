// age's passphrase stanza ("-> scrypt <salt> <logN>", age-encryption.org/v1/scrypt) computed
// with Node's native crypto instead of age-encryption's pure-JS scrypt, which is slower (1.8 s
// against 1.3 s at logN 18 here) and, worse, now and then hits a V8 tiering bug that makes
// it run 5-7 times slower (see README.md, "Speed"). Same wire format as typage's
// ScryptRecipient/ScryptIdentity and Go age: key = scrypt(passphrase, label || salt, N=2^logN,
// r=8, p=1, 32 bytes); body = ChaCha20-Poly1305(key, 12 zero bytes, file key). The header
// MAC and the payload stay with age-encryption.
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { Stanza, type Identity, type Recipient } from 'age-encryption';

const LABEL = Buffer.from('age-encryption.org/v1/scrypt', 'latin1');
const R = 8;
/** Above this, a file could make keel allocate gigabytes (typage and age refuse it too). */
export const MAX_LOG_N = 20;
/** age's default work factor. */
export const DEFAULT_LOG_N = 18;

/** Derives the stanza's wrapping key. Injectable so tests can count derivations. */
export type ScryptKdf = (passphrase: string, salt: Uint8Array, logN: number) => Promise<Buffer>;

/** A malformed stanza: the header is damaged (or written by something that is not age). */
export class StanzaError extends Error {}

export const nativeScrypt: ScryptKdf = (passphrase, salt, logN) =>
  new Promise((resolve, reject) => {
    const N = 2 ** logN;
    // OpenSSL needs 128·r·(N+2) bytes for V plus 128·r·p for B; the default cap is 32 MiB.
    const maxmem = 128 * R * (N + 3) + (1 << 20);
    scrypt(passphrase, Buffer.concat([LABEL, salt]), 32, { N, r: R, p: 1, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });

const ZERO_NONCE = Buffer.alloc(12);

export function sealFileKey(fileKey: Uint8Array, key: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: 16 });
  return Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
}

/** The file key, or null when the key does not open the body (a wrong passphrase). */
export function openFileKey(body: Uint8Array, key: Uint8Array): Uint8Array | null {
  if (body.length !== 32) throw new StanzaError('invalid scrypt stanza body');
  const d = createDecipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: 16 });
  d.setAuthTag(body.subarray(16));
  try {
    return new Uint8Array(Buffer.concat([d.update(body.subarray(0, 16)), d.final()]));
  } catch {
    return null;
  }
}

export class ScryptStanzaRecipient implements Recipient {
  /** The file key age-encryption generated for the last file, so a save can refresh an
   *  unlocked key (key-cache.ts) without deriving anything again. */
  lastFileKey: Uint8Array | undefined;

  constructor(
    private readonly passphrase: string,
    private readonly logN = DEFAULT_LOG_N,
    private readonly kdf: ScryptKdf = nativeScrypt,
  ) {
    if (!Number.isInteger(logN) || logN < 1 || logN > MAX_LOG_N) {
      throw new RangeError(`scrypt work factor must be 1..${MAX_LOG_N}, got ${logN}`);
    }
  }

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const salt = randomBytes(16);
    const key = await this.kdf(this.passphrase, salt, this.logN);
    try {
      this.lastFileKey = Uint8Array.from(fileKey);
      return [new Stanza(['scrypt', salt.toString('base64').replace(/=+$/, ''), String(this.logN)], sealFileKey(fileKey, key))];
    } finally {
      key.fill(0);
    }
  }
}

export class ScryptStanzaIdentity implements Identity {
  constructor(
    private readonly passphrase: string,
    private readonly kdf: ScryptKdf = nativeScrypt,
  ) {}

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    const s = stanzas.find((st) => st.args[0] === 'scrypt');
    if (!s) return null;
    // The spec: a passphrase file has exactly one stanza, so nobody can add a recipient to it.
    if (stanzas.length !== 1) throw new StanzaError('an scrypt stanza is not the only one in the header');
    const { salt, logN } = parseScryptArgs(s.args);
    const key = await this.kdf(this.passphrase, salt, logN);
    try {
      return openFileKey(s.body, key);
    } finally {
      key.fill(0);
    }
  }
}

/** The same checks as typage's ScryptIdentity: "scrypt", 16 bytes of unpadded base64 salt,
 *  a decimal work factor without leading zeros, at most MAX_LOG_N. */
export function parseScryptArgs(args: string[]): { salt: Buffer; logN: number } {
  if (args.length !== 3) throw new StanzaError('invalid scrypt stanza');
  const [, b64, n] = args as [string, string, string];
  if (!/^[A-Za-z0-9+/]{22}$/.test(b64) || !/^[1-9][0-9]*$/.test(n)) throw new StanzaError('invalid scrypt stanza');
  const salt = Buffer.from(b64, 'base64');
  // Canonical unpadded base64 only: the last character must carry no stray bits.
  if (salt.length !== 16 || salt.toString('base64').replace(/=+$/, '') !== b64) throw new StanzaError('invalid scrypt stanza');
  const logN = Number(n);
  if (logN > MAX_LOG_N) throw new StanzaError('scrypt work factor is too high');
  return { salt, logN };
}
