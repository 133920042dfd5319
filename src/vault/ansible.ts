// Reads Ansible Vault files (format 1.1 and 1.2, cipher AES256) with Node's crypto, following
// lib/ansible/parsing/vault/__init__.py (VaultAES256): the body is hex of
// "hex(salt)\nhex(hmac)\nhex(ciphertext)"; PBKDF2-HMAC-SHA256(password, salt, 10000, 80 bytes)
// gives the AES key, the HMAC key and the CTR IV; the HMAC is checked before decrypting.
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../errors.js';

export interface AnsibleVaultInfo {
  version: string;
  cipher: string;
  label?: string;
}

/** A whole file encrypted by ansible-vault, or the text of an inline `!vault |` value. */
export function isAnsibleVault(data: Buffer | string): boolean {
  return (typeof data === 'string' ? data : data.subarray(0, 15).toString('latin1')).startsWith('$ANSIBLE_VAULT;');
}

export function parseAnsibleEnvelope(data: Buffer, file: string): { info: AnsibleVaultInfo; body: string } {
  const text = data.toString('latin1');
  if (!text.startsWith('$ANSIBLE_VAULT;')) {
    throw new ConfigError(`${file} is not an Ansible Vault file (it does not start with $ANSIBLE_VAULT;)`);
  }
  const lines = text.split(/\r?\n/);
  const header = lines[0]!.trim().split(';');
  const info: AnsibleVaultInfo = { version: header[1]?.trim() ?? '', cipher: header[2]?.trim() ?? '' };
  if (header.length >= 4) info.label = header[3]!.trim();
  if (info.version !== '1.1' && info.version !== '1.2') {
    throw new ConfigError(`${file}: unsupported Ansible Vault format version '${info.version}' (keel reads 1.1 and 1.2)`);
  }
  if (info.cipher !== 'AES256') {
    throw new ConfigError(`${file}: unsupported Ansible Vault cipher '${info.cipher}' (keel reads AES256)`, undefined, {
      hint: 'run ansible-vault rekey on it first to upgrade it to AES256',
    });
  }
  return { info, body: lines.slice(1).join('').trim() };
}

export function decryptAnsibleVault(data: Buffer, password: Buffer, file: string): Buffer {
  const { body } = parseAnsibleEnvelope(data, file);
  const corrupt = () => new ConfigError(`${file} is truncated or corrupted (bad Ansible Vault body)`);
  const inner = unhex(body, corrupt).toString('latin1');
  const nl1 = inner.indexOf('\n');
  const nl2 = nl1 < 0 ? -1 : inner.indexOf('\n', nl1 + 1);
  if (nl2 < 0) throw corrupt();
  const salt = unhex(inner.slice(0, nl1), corrupt);
  const expected = unhex(inner.slice(nl1 + 1, nl2), corrupt);
  const ciphertext = unhex(inner.slice(nl2 + 1).trim(), corrupt);
  if (!salt.length || expected.length !== 32 || !ciphertext.length || ciphertext.length % 16) throw corrupt();

  const derived = pbkdf2Sync(password, salt, 10000, 80, 'sha256');
  const aesKey = derived.subarray(0, 32);
  const hmacKey = derived.subarray(32, 64);
  const iv = derived.subarray(64, 80);
  const actual = createHmac('sha256', hmacKey).update(ciphertext).digest();
  if (!timingSafeEqual(actual, expected)) {
    derived.fill(0);
    throw new ConfigError(`cannot decrypt ${file}: wrong Ansible Vault password, or the file was modified (HMAC mismatch)`);
  }
  const decipher = createDecipheriv('aes-256-ctr', aesKey, iv);
  const padded = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  derived.fill(0);
  const n = padded[padded.length - 1] ?? 0;
  if (n < 1 || n > 16 || n > padded.length || !padded.subarray(padded.length - n).every((b) => b === n)) {
    padded.fill(0);
    throw new ConfigError(`${file} decrypts with bad padding: it is corrupted`);
  }
  const plain = Buffer.from(padded.subarray(0, padded.length - n));
  padded.fill(0);
  return plain;
}

/** What ansible does with a password file: strip surrounding whitespace. */
export function ansiblePasswordFromFile(content: Buffer, file: string): Buffer {
  const p = Buffer.from(content.toString('utf8').trim(), 'utf8');
  if (!p.length) throw new ConfigError(`the Ansible Vault password file ${file} is empty`);
  return p;
}

function unhex(s: string, fail: () => Error): Buffer {
  if (s.length % 2 || !/^[0-9a-fA-F]*$/.test(s)) throw fail();
  return Buffer.from(s, 'hex');
}
