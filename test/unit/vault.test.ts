import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCipheriv, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { ConfigError, KeelError } from '../../src/errors.js';
import { decryptAnsibleVault, parseAnsibleEnvelope } from '../../src/vault/ansible.js';
import { writeFileAtomic, type AtomicFs } from '../../src/vault/atomic.js';
import { flattenPaths, getPath, parsePath, parseSecrets, setPath, valueToText } from '../../src/vault/document.js';
import { parseIdentities, parseRecipients } from '../../src/vault/keys.js';
import { describeHeader, inspectHeader } from '../../src/vault/age-file.js';
import { envForFile } from '../../src/vault/operations.js';
import { wipeDir } from '../../src/vault/plaintext-dir.js';

/** Ansible's VaultAES256.encrypt, rebuilt with Node's crypto (for fixtures without ansible). */
function ansibleEncrypt(plain: string, password: string, label?: string): string {
  const salt = randomBytes(32);
  const k = pbkdf2Sync(password, salt, 10000, 80, 'sha256');
  const n = 16 - (Buffer.byteLength(plain) % 16);
  const padded = Buffer.concat([Buffer.from(plain), Buffer.alloc(n, n)]);
  const c = createCipheriv('aes-256-ctr', k.subarray(0, 32), k.subarray(64, 80));
  const ct = Buffer.concat([c.update(padded), c.final()]);
  const mac = createHmac('sha256', k.subarray(32, 64)).update(ct).digest('hex');
  const body = Buffer.from([salt.toString('hex'), mac, ct.toString('hex')].join('\n')).toString('hex');
  const head = label ? `$ANSIBLE_VAULT;1.2;AES256;${label}` : '$ANSIBLE_VAULT;1.1;AES256';
  return [head, ...(body.match(/.{1,80}/g) ?? [])].join('\n') + '\n';
}

describe('Ansible Vault reader', () => {
  it('decrypts 1.1 and 1.2 files', () => {
    const v11 = Buffer.from(ansibleEncrypt('db_password: s3cret\n', 'pw'));
    expect(decryptAnsibleVault(v11, Buffer.from('pw'), 'f').toString()).toBe('db_password: s3cret\n');
    const v12 = Buffer.from(ansibleEncrypt('a: 1\n', 'pw', 'prod'));
    expect(parseAnsibleEnvelope(v12, 'f').info).toEqual({ version: '1.2', cipher: 'AES256', label: 'prod' });
    expect(decryptAnsibleVault(v12, Buffer.from('pw'), 'f').toString()).toBe('a: 1\n');
  });

  it('checks the HMAC before decrypting: wrong password and tampering both fail', () => {
    const v = ansibleEncrypt('a: 1\n', 'pw');
    expect(() => decryptAnsibleVault(Buffer.from(v), Buffer.from('nope'), 'f')).toThrow(/wrong Ansible Vault password/);
    const lines = v.split('\n');
    const last = lines[lines.length - 2]!;
    lines[lines.length - 2] = last.slice(0, -2) + (last.endsWith('30') ? '31' : '30');
    expect(() => decryptAnsibleVault(Buffer.from(lines.join('\n')), Buffer.from('pw'), 'f')).toThrow(/HMAC mismatch|corrupted/);
  });

  it('rejects what is not an Ansible vault, and truncated bodies', () => {
    expect(() => decryptAnsibleVault(Buffer.from('a: 1\n'), Buffer.from('pw'), 'f')).toThrow(/not an Ansible Vault file/);
    const v = ansibleEncrypt('a: 1\n', 'pw');
    expect(() => decryptAnsibleVault(Buffer.from(v.slice(0, 100)), Buffer.from('pw'), 'f')).toThrow(ConfigError);
    expect(() => decryptAnsibleVault(Buffer.from('$ANSIBLE_VAULT;1.1;AES\n00\n'), Buffer.from('pw'), 'f')).toThrow(/unsupported Ansible Vault cipher/);
  });
});

describe('vault YAML', () => {
  it('reports syntax errors as file:line:col without quoting the text', () => {
    const text = 'a: 1\nsecret_value_here: : :\n';
    try {
      parseSecrets(text, 'secrets/prod.age');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^secrets\/prod\.age:2:\d+: invalid YAML/);
      expect(msg).not.toContain('secret_value_here');
    }
  });

  it('needs a mapping with template-friendly top-level keys; empty means {}', () => {
    expect(parseSecrets('', 'f').data).toEqual({});
    expect(parseSecrets('# only a comment\n', 'f').data).toEqual({});
    expect(() => parseSecrets('- a\n- b\n', 'f')).toThrow(/must be a YAML mapping/);
    expect(() => parseSecrets('x: 1\nbad-key: 2\n', 'f')).toThrow(/^f:2:1: invalid key name/);
    expect(() => parseSecrets('a: 1\na: 2\n', 'f')).toThrow(/duplicate key/);
  });

  it('dotted paths: validated per segment, read and written keeping comments', () => {
    expect(parsePath('db.password')).toEqual(['db', 'password']);
    for (const bad of ['', 'a..b', '1a', 'a-b', 'a.b c', '$(x)']) expect(() => parsePath(bad)).toThrow(ConfigError);
    const sd = parseSecrets('# keep me\nx: 1 # and me\n', 'f');
    const out = setPath(sd, ['db', 'password'], 'p: w\n"q"', 'f');
    expect(out).toContain('# keep me');
    expect(out).toContain('# and me');
    const again = parseSecrets(out, 'f').data;
    expect(getPath(again, ['db', 'password'])).toBe('p: w\n"q"');
    expect(() => setPath(parseSecrets('x: 1\n', 'f'), ['x', 'y'], 'v', 'f')).toThrow(/x is not a mapping/);
  });

  it('flattens to leaf paths and prints values', () => {
    expect(flattenPaths({ a: { b: 1, c: [2, { d: 3 }] }, e: {} }).map(([p]) => p)).toEqual(['a.b', 'a.c[0]', 'a.c[1].d', 'e']);
    expect(flattenPaths({})).toEqual([]);
    expect(valueToText('x')).toBe('x');
    expect(valueToText(5)).toBe('5');
    expect(valueToText({ a: 1 })).toBe('a: 1');
  });
});

describe('key files', () => {
  it('parses recipients with comments and refuses garbage', () => {
    const r = parseRecipients('# team\nage1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq  # alice\n\n', 'r');
    expect(r).toEqual([{ key: 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq', comment: 'alice', line: 2 }]);
    expect(() => parseRecipients('ssh-ed25519 AAAA\n', 'r')).toThrow(/^r:1: /);
  });

  it('never echoes a malformed identity line', () => {
    try {
      parseIdentities('AGE-SECRET-KEY-1ABC\nage-secret-key-1lowercase-oops\n', 'id.txt');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/^id\.txt:2: /);
      expect((err as Error).message).not.toContain('oops');
    }
  });
});

describe('age header', () => {
  it('says what a file is encrypted to without any key', () => {
    const h = 'age-encryption.org/v1\n-> X25519 abc\nAAAA\n-> X25519 def\nBBBB\n--- mac\n';
    expect(describeHeader(inspectHeader(Buffer.from(h + 'payload'), 'f'))).toBe('encrypted to 2 X25519 recipient(s)');
    const s = 'age-encryption.org/v1\n-> scrypt salt 18\nAAAA\n--- mac\n';
    expect(describeHeader(inspectHeader(Buffer.from(s), 'f'))).toBe('encrypted with a passphrase (scrypt)');
    expect(() => inspectHeader(Buffer.from('db_password: x\n'), 'f')).toThrow(/not a keel vault/);
    expect(() => inspectHeader(Buffer.from('$ANSIBLE_VAULT;1.1;AES256\n00'), 'f')).toThrow(/not a keel vault/);
    expect(() => inspectHeader(Buffer.from(h.slice(0, 30)), 'f')).toThrow(/truncated or corrupted/);
  });

  it('finds the environment of a file git hands to textconv', () => {
    expect(envForFile('/nonexistent', 'secrets/prod.age')).toBe('prod');
    expect(envForFile('/nonexistent', '/tmp/Ab12Cd_prod.age')).toBe('prod');
  });
});

describe('atomic writes', () => {
  const made: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'keel-atomic-'));
    made.push(d);
    return d;
  };
  afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('replaces the file and keeps its mode', () => {
    const d = dir();
    const f = join(d, 'v.age');
    writeFileSync(f, 'old', { mode: 0o640 });
    writeFileAtomic(f, 'new');
    expect(readFileSync(f, 'utf8')).toBe('new');
    expect(fs.statSync(f).mode & 0o777).toBe(0o640);
    expect(readdirSync(d)).toEqual(['v.age']);
  });

  it('disk full (a mocked writeSync that fails with ENOSPC): the old file survives, no temp file left', () => {
    const d = dir();
    const f = join(d, 'v.age');
    writeFileSync(f, 'old bytes');
    const full: AtomicFs = {
      ...fs,
      writeSync: (() => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }) as AtomicFs['writeSync'],
    };
    expect(() => writeFileAtomic(f, 'new bytes', { fs: full, display: 'secrets/x.age' })).toThrow(
      /cannot write secrets\/x\.age: no space left on device \(ENOSPC\); the previous file is unchanged/,
    );
    expect(readFileSync(f, 'utf8')).toBe('old bytes');
    expect(readdirSync(d)).toEqual(['v.age']);
  });

  it('a failing rename leaves the old file too', () => {
    const d = dir();
    const f = join(d, 'v.age');
    writeFileSync(f, 'old');
    const bad: AtomicFs = {
      ...fs,
      renameSync: () => {
        throw Object.assign(new Error('EIO'), { code: 'EIO' });
      },
    };
    expect(() => writeFileAtomic(f, 'new', { fs: bad })).toThrow(KeelError);
    expect(readFileSync(f, 'utf8')).toBe('old');
    expect(readdirSync(d)).toEqual(['v.age']);
  });
});

describe('plaintext wiping', () => {
  it('zeroes, unlinks and removes everything, swap files included', () => {
    const d = mkdtempSync(join(tmpdir(), 'keel-wipe-'));
    writeFileSync(join(d, 'prod.yaml'), 'secret');
    writeFileSync(join(d, '.prod.yaml.swp'), 'secret');
    wipeDir(d);
    expect(fs.existsSync(d)).toBe(false);
  });
});
