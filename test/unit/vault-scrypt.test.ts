// The passphrase stanza with Node's native scrypt: the same key and the same bytes on the wire
// as age-encryption's pure-JS one and as Debian's `age -p` (a fixture it wrote, logN 18).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decrypter, Encrypter, Stanza } from 'age-encryption';
import { scrypt as nobleScrypt } from '@noble/hashes/scrypt.js';
import { ConfigError } from '../../src/errors.js';
import { decryptWith, encryptText, inspectHeader, unarmor, unwrapFileKey } from '../../src/vault/age-file.js';
import { ScryptStanzaIdentity, ScryptStanzaRecipient, nativeScrypt, openFileKey, parseScryptArgs, sealFileKey } from '../../src/vault/scrypt-stanza.js';

const fixture = (name: string) => readFileSync(join(__dirname, '..', 'fixtures', 'vault', name));
const counting = () => {
  const calls: number[] = [];
  return { calls, kdf: (p: string, s: Uint8Array, n: number) => (calls.push(n), nativeScrypt(p, s, n)) };
};

describe('native scrypt stanza', () => {
  it('derives the same key as @noble/hashes (what age-encryption uses)', async () => {
    const salt = Buffer.from('0123456789abcdef');
    const label = Buffer.from('age-encryption.org/v1/scrypt');
    for (const [pass, logN] of [
      ['pass phrase', 10],
      ['pässwörd ✓', 12],
    ] as const) {
      const expected = nobleScrypt(pass, Buffer.concat([label, salt]), { N: 2 ** logN, r: 8, p: 1, dkLen: 32 });
      expect((await nativeScrypt(pass, salt, logN)).equals(Buffer.from(expected))).toBe(true);
    }
  });

  it("age-encryption's own passphrase files open with it, and its files open with age-encryption", async () => {
    const e = new Encrypter();
    e.setScryptWorkFactor(10);
    e.setPassphrase('pw');
    const theirs = await e.encrypt('a: 1\n');
    expect(await decryptWith(theirs, { kind: 'passphrase', secret: 'pw', source: 't' }, 'f')).toBe('a: 1\n');

    const ours = await encryptText('b: 2\n', { passphrase: 'pw', logN: 10 });
    const d = new Decrypter();
    d.addPassphrase('pw');
    expect(await d.decrypt(ours.bytes, 'text')).toBe('b: 2\n');
    expect(ours.fileKey).toHaveLength(16);
    // the stanza line is what age writes: "-> scrypt <22 chars of base64> <logN>"
    expect(Buffer.from(ours.bytes).toString('latin1')).toMatch(/^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n[A-Za-z0-9+/]{43}\n--- /);
  });

  it('opens files written by `age -p` (binary and armored, logN 18) with one derivation each', async () => {
    for (const name of ['age-p.age', 'age-p-armored.age']) {
      const { calls, kdf } = counting();
      const bytes = unarmor(fixture(name), name);
      const text = await decryptWith(bytes, { kind: 'passphrase', secret: 'fixture passphrase', source: 't' }, name, kdf);
      expect(text).toBe('from_age_cli: p-encrypted\nnested:\n  key: value\n');
      expect(calls).toEqual([18]);
    }
  });

  it('a wrong passphrase does not fit (null), it is not an error', async () => {
    const bytes = fixture('age-p.age');
    // derived at logN 10 to keep the test fast: a wrong key is a wrong key
    const fast = (p: string, s: Uint8Array) => nativeScrypt(p, s, 10);
    expect(await decryptWith(bytes, { kind: 'passphrase', secret: 'nope', source: 't' }, 'f', fast)).toBeNull();
  });

  it('unwraps only the file key (header MAC checked), which then opens the payload', async () => {
    const enc = await encryptText('c: 3\n', { passphrase: 'pw', logN: 10 });
    const header = inspectHeader(enc.bytes, 'f');
    const key = await unwrapFileKey(enc.bytes, header, { kind: 'passphrase', secret: 'pw', source: 't' }, 'f');
    expect(Buffer.from(key!).equals(Buffer.from(enc.fileKey!))).toBe(true);
    expect(await unwrapFileKey(enc.bytes, header, { kind: 'passphrase', secret: 'no', source: 't' }, 'f')).toBeNull();
    expect(await decryptWith(enc.bytes, { kind: 'filekey', secret: key!, source: 't' }, 'f')).toBe('c: 3\n');
    const wrong = new Uint8Array(16);
    await expect(decryptWith(enc.bytes, { kind: 'filekey', secret: wrong, source: 't' }, 'f')).rejects.toThrow(/header MAC/);
  });

  it('seals the file key with ChaCha20-Poly1305 under a zero nonce, as age does', () => {
    const key = Buffer.alloc(32, 7);
    const fileKey = Buffer.alloc(16, 9);
    const body = sealFileKey(fileKey, key);
    expect(body).toHaveLength(32);
    expect(Buffer.from(openFileKey(body, key)!).equals(fileKey)).toBe(true);
    const flipped = Buffer.from(body);
    flipped[3]! ^= 1;
    expect(openFileKey(flipped, key)).toBeNull();
    expect(() => openFileKey(body.subarray(0, 31), key)).toThrow(/body/);
  });

  it('checks the stanza as typage does: canonical 16-byte salt, logN 1..20 without leading zeros', () => {
    const salt = 'AAAAAAAAAAAAAAAAAAAAAA';
    expect(parseScryptArgs(['scrypt', salt, '18']).logN).toBe(18);
    for (const bad of [
      ['scrypt', salt],
      ['scrypt', salt, '018'],
      ['scrypt', salt, '0'],
      ['scrypt', salt, '-1'],
      ['scrypt', 'AAAAAAAAAAAAAAAAAAAAAB', '18'], // stray bits in the last character
      ['scrypt', 'AAAAAAAAAAAAAAAAAAAAAA==', '18'],
      ['scrypt', 'AAAA', '18'],
    ]) {
      expect(() => parseScryptArgs(bad), bad.join(' ')).toThrow(/invalid scrypt stanza/);
    }
    expect(() => parseScryptArgs(['scrypt', salt, '21'])).toThrow(/too high/);
  });

  it('refuses an scrypt stanza next to another one, and a work factor above 20, before deriving', async () => {
    const { calls, kdf } = counting();
    const id = new ScryptStanzaIdentity('pw', kdf);
    const s = new Stanza(['scrypt', 'AAAAAAAAAAAAAAAAAAAAAA', '10'], new Uint8Array(32));
    await expect(id.unwrapFileKey([s, new Stanza(['X25519', 'x'], new Uint8Array(32))])).rejects.toThrow(/not the only one/);
    await expect(id.unwrapFileKey([new Stanza(['scrypt', 'AAAAAAAAAAAAAAAAAAAAAA', '21'], new Uint8Array(32))])).rejects.toThrow(/too high/);
    expect(await id.unwrapFileKey([new Stanza(['X25519', 'x'], new Uint8Array(32))])).toBeNull();
    expect(calls).toEqual([]);
    expect(() => new ScryptStanzaRecipient('pw', 21)).toThrow(RangeError);
  });

  it('maps damage to ConfigErrors that name the file and quote nothing', async () => {
    const good = Buffer.from(fixture('age-p.age'));
    const text = good.toString('latin1').replace(/ 18\n/, ' 21\n');
    const cred = { kind: 'passphrase' as const, secret: 'fixture passphrase', source: 't' };
    await expect(decryptWith(Buffer.from(text, 'latin1'), cred, 'secrets/x.age')).rejects.toThrow(/^secrets\/x\.age uses an scrypt work factor above 20/);
    const odd = good.toString('latin1').replace(/ 18\n/, ' 018\n');
    await expect(decryptWith(Buffer.from(odd, 'latin1'), cred, 'secrets/x.age')).rejects.toThrow(ConfigError);
  });
});
