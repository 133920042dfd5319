// The vault commands as functions that return values; src/cli/commands/secrets.ts prints them.
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { BugError, ConfigError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { type Credential } from './age-file.js';
import { ansiblePasswordFromFile, decryptAnsibleVault } from './ansible.js';
import { flattenPaths, getPath, parsePath, parseSecrets, setPath } from './document.js';
import { checkRecipient, identitiesFromConfig, newPassphrase, parseRecipients } from './keys.js';
import { type VaultContext, type VaultOptions, describeTarget, encryptionTarget, openBytes, requireVault, saveVault, vaultContext } from './store.js';

export const EMPTY_VAULT = (env: string) => `# keel secrets for ${env}: a YAML mapping, used in templates as secrets.<key>\n# db_password: ...\n`;

export async function initVault(vc: VaultContext, recipients: string[]): Promise<string> {
  if (existsSync(vc.paths.vault)) {
    throw new ConfigError(`${vc.paths.display} already exists; keel will not overwrite it`, undefined, {
      hint: `change it with: keel secrets edit ${vc.env}`,
    });
  }
  for (const r of recipients) await checkRecipient(r, '--recipient');
  mkdirSync(dirname(vc.paths.vault), { recursive: true });
  if (recipients.length) {
    if (existsSync(vc.paths.recipients)) {
      throw new ConfigError(`secrets/${vc.env}.recipients already exists; edit it instead of passing --recipient`);
    }
    writeFileAtomic(vc.paths.recipients, [...new Set(recipients)].join('\n') + '\n', { fs: vc.fs, display: `secrets/${vc.env}.recipients` });
  }
  const target = await encryptionTarget(vc);
  await saveVault(vc, EMPTY_VAULT(vc.env), target, { keepUnlocked: false });
  return `created ${vc.paths.display}, encrypted to ${describeTarget(target)}`;
}

export async function viewVault(vc: VaultContext): Promise<string> {
  return (await requireVault(vc, { unlocked: true })).text;
}

export async function getSecret(vc: VaultContext, key: string): Promise<unknown> {
  const path = parsePath(key);
  const opened = await requireVault(vc, { unlocked: true });
  const { data } = parseSecrets(opened.text, vc.paths.display);
  const v = getPath(data, path);
  if (v === undefined) throw new ConfigError(`${vc.paths.display} has no key '${key}'`);
  return v;
}

/** Sets a string value. Returns the decrypted secrets (for the redactor) and whether the
 *  file changed. */
export async function setSecret(vc: VaultContext, key: string, value: string): Promise<{ changed: boolean; data: Record<string, unknown> }> {
  const path = parsePath(key);
  const opened = await requireVault(vc);
  const sd = parseSecrets(opened.text, vc.paths.display);
  const text = setPath(sd, path, value, vc.paths.display);
  if (text === opened.text) return { changed: false, data: sd.data };
  await saveVault(vc, text, await encryptionTarget(vc, opened), { keepUnlocked: true });
  return { changed: true, data: sd.data };
}

/** Re-encrypts: to the recipients file if there is one, else to a new passphrase
 *  ($KEEL_VAULT_NEW_PASSWORD or asked). A password file is updated to the new passphrase. */
export async function rekeyVault(vc: VaultContext): Promise<string> {
  const opened = await requireVault(vc);
  parseSecrets(opened.text, vc.paths.display);
  return reencrypt(vc, opened.text);
}

async function reencrypt(vc: VaultContext, text: string): Promise<string> {
  if (existsSync(vc.paths.recipients)) {
    const target = await encryptionTarget(vc);
    await saveVault(vc, text, target, { keepUnlocked: false });
    return `rekeyed ${vc.paths.display} to ${describeTarget(target)}`;
  }
  const p = await newPassphrase(vc, vc.paths.display, 'KEEL_VAULT_NEW_PASSWORD');
  await saveVault(vc, text, { passphrase: p.passphrase, logN: vc.logN }, { keepUnlocked: false });
  let note = '';
  if (existsSync(vc.paths.password)) {
    writeFileAtomic(vc.paths.password, p.passphrase + '\n', { mode: 0o600, fs: vc.fs, display: `secrets/${vc.env}.password` });
    note = `; secrets/${vc.env}.password now holds the new passphrase`;
  }
  if (vc.vars.KEEL_VAULT_PASSWORD) note += '; update KEEL_VAULT_PASSWORD wherever it is set (CI)';
  return `rekeyed ${vc.paths.display} to a new passphrase (scrypt)${note}`;
}

export async function recipientsChange(
  vc: VaultContext,
  action: 'add' | 'rm',
  key: string,
  comment?: string,
): Promise<{ message: string; warnings: string[] }> {
  const file = `secrets/${vc.env}.recipients`;
  await checkRecipient(key, 'the command line');
  const current = existsSync(vc.paths.recipients) ? readFileSync(vc.paths.recipients, 'utf8') : '';
  const lines = parseRecipients(current, file);
  let next: string;
  if (action === 'add') {
    if (lines.some((l) => l.key === key)) return { message: `${key} is already a recipient of ${vc.env}`, warnings: [] };
    next = (current && !current.endsWith('\n') ? current + '\n' : current) + key + (comment ? `  # ${comment}` : '') + '\n';
  } else {
    if (!lines.some((l) => l.key === key)) throw new ConfigError(`${key} is not listed in ${file}`);
    if (lines.length === 1) {
      throw new ConfigError(`${key} is the last recipient in ${file}`, undefined, {
        hint: `to switch ${vc.env} to a passphrase, delete ${file} and run keel secrets rekey ${vc.env}`,
      });
    }
    next = current
      .split('\n')
      .filter((raw) => raw.split('#')[0]!.trim() !== key)
      .join('\n');
  }
  // Decrypt with the keys that work today, before the recipients change.
  const opened = await requireVault(vc);
  const keys = parseRecipients(next, file).map((l) => l.key);
  const warnings: string[] = [];
  const mine = (await identitiesFromConfig(vc)).flatMap((s) => s.publicKeys);
  if (!mine.some((k) => keys.includes(k))) {
    warnings.push(`none of your own identities is a recipient any more: you will not be able to decrypt ${vc.paths.display}`);
  }
  // The vault first: if that write fails, the recipients file still matches it.
  await saveVault(vc, opened.text, { recipients: keys }, { keepUnlocked: false });
  writeFileAtomic(vc.paths.recipients, next, { fs: vc.fs, display: file });
  const verb = action === 'add' ? 'added' : 'removed';
  return { message: `${verb} ${key}; ${vc.paths.display} re-encrypted to ${keys.length} recipient(s)`, warnings };
}

export async function importAnsible(
  vc: VaultContext,
  file: string,
  password: Buffer,
  force: boolean,
): Promise<{ message: string; data: Record<string, unknown> }> {
  if (existsSync(vc.paths.vault) && !force) {
    throw new ConfigError(`${vc.paths.display} already exists; keel will not overwrite it`, undefined, {
      hint: 'pass --force to replace it',
    });
  }
  const plain = decryptAnsibleVault(readFileSync(file), password, file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } finally {
    plain.fill(0);
  }
  const { data } = parseSecrets(text, `${file} (decrypted)`);
  mkdirSync(dirname(vc.paths.vault), { recursive: true });
  const target = await encryptionTarget(vc);
  await saveVault(vc, text, target, { keepUnlocked: false });
  return { message: `imported ${file} into ${vc.paths.display} (${Object.keys(data).length} keys), encrypted to ${describeTarget(target)}`, data };
}

export function readAnsiblePasswordFile(path: string): Buffer {
  if (!existsSync(path)) throw new ConfigError(`the Ansible Vault password file ${path} does not exist`);
  return ansiblePasswordFromFile(readFileSync(path), path);
}

/** Which environment a file passed to `diff` belongs to. git's textconv hands over either the
 *  work-tree path (secrets/prod.age) or a temporary copy named XXXXXX_prod.age. */
export function envForFile(root: string, file: string): string {
  const name = basename(file).replace(/\.age$/, '');
  const gitTemp = /^[A-Za-z0-9]{6}_(.+)$/.exec(name);
  if (gitTemp && !existsSync(resolve(root, 'secrets', `${name}.age`))) return gitTemp[1]!;
  return name;
}

/** `git diff` text for a vault: each key path with its value masked and a short tag that
 *  changes when the value changes. The tag is HMAC-SHA256 keyed by a hash of the credential
 *  that opened the file (passphrase or identities), over "path\0value", truncated to 8 hex:
 *  stable between two versions opened with the same key, useless for confirming guesses
 *  to anyone who does not hold that key, and different for equal values under two keys. */
export async function diffText(root: string, file: string, opts: VaultOptions & { env?: string }): Promise<{ text: string; data: Record<string, unknown> }> {
  const env = opts.env ?? envForFile(root, file);
  const vc = vaultContext(root, env, opts);
  if (!existsSync(file)) throw new ConfigError(`${file} does not exist`);
  // Never with an unlocked key: the tags are keyed by the credential, and git runs this once
  // per side, so both sides must be opened with the same (long-lived) one.
  const opened = await openBytes(vc, readFileSync(file), file);
  const { data } = parseSecrets(opened.text, file);
  const key = tagKey(opened.credential);
  const lines = flattenPaths(data).map(([path, value]) => {
    const tag = createHmac('sha256', key)
      .update(`${path}\0${canonical(value)}`)
      .digest('hex')
      .slice(0, 8);
    return `${path}: ****** #${tag}`;
  });
  return { text: ['# keel secrets: values masked, #tag changes when a value does', ...lines].join('\n'), data };
}

function tagKey(c: Credential): Buffer {
  if (c.kind === 'filekey') throw new BugError('diff tags cannot be keyed by an unlocked file key');
  const secret = c.kind === 'passphrase' ? c.secret : [...c.secret].sort().join('\n');
  return createHash('sha256').update(`keel-vault-diff-v1\0${c.kind}\0${secret}`).digest();
}

function canonical(v: unknown): string {
  return typeof v === 'string' ? `s:${v}` : `j:${JSON.stringify(v)}`;
}
