// The vault commands as functions that return values; src/cli/commands/secrets.ts prints them.
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { BugError, ConfigError, formatLocation, type SourceLocation } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { type Credential } from './age-file.js';
import { isDeepStrictEqual } from 'node:util';
import YAML from 'yaml';
import { UnsafeText, VaultText, parseAnsibleYaml, varsMapping } from '../inventory/pyyaml.js';
import { ansiblePasswordFromFile, decryptAnsibleVault, isAnsibleVault } from './ansible.js';
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

/**
 * Imports an Ansible Vault file: encrypted whole (`ansible-vault create`), or a YAML vars file
 * with values encrypted inline (`!vault |`, from `ansible-vault encrypt_string`): every key is
 * imported, the inline ones decrypted. A whole file is kept as written (comments included);
 * if YAML 1.1, which Ansible reads, types a value differently from YAML 1.2, which keel
 * reads (`yes`, `0777`), the message names those keys.
 */
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
  const bytes = readFileSync(file);
  const whole = isAnsibleVault(bytes);
  const { text, inline, differ } = whole ? wholeFileText(bytes, password, file) : await inlineVaultText(bytes, password, file);
  const { data } = parseSecrets(text, `${file} (decrypted)`);
  mkdirSync(dirname(vc.paths.vault), { recursive: true });
  const target = await encryptionTarget(vc);
  await saveVault(vc, text, target, { keepUnlocked: false });
  const keys = Object.keys(data).length;
  const how = whole ? '' : `, ${inline} of them encrypted inline`;
  const note = differ.length ? `; note: Ansible (YAML 1.1) reads ${differ.join(', ')} differently from keel (YAML 1.2): check with keel secrets view` : '';
  return { message: `imported ${file} into ${vc.paths.display} (${keys} keys${how}), encrypted to ${describeTarget(target)}${note}`, data };
}

function wholeFileText(bytes: Buffer, password: Buffer, file: string): { text: string; inline: number; differ: string[] } {
  const plain = decryptAnsibleVault(bytes, password, file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } finally {
    plain.fill(0);
  }
  const keel = parseSecrets(text, `${file} (decrypted)`).data;
  const ansible = parseAnsibleYaml(text, `${file} (decrypted)`, { secret: true }).data as Record<string, unknown> | null;
  const differ = Object.keys(keel).filter((k) => !isDeepStrictEqual(keel[k], ansible?.[k]));
  return { text, inline: 0, differ };
}

async function inlineVaultText(bytes: Buffer, password: Buffer, file: string): Promise<{ text: string; inline: number; differ: string[] }> {
  let source: string;
  try {
    source = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError(`${file} is neither an Ansible Vault file nor a UTF-8 YAML vars file`);
  }
  const y = parseAnsibleYaml(source, file);
  const mapping = varsMapping(y, file);
  let inline = 0;
  const decrypt = (v: unknown, where: SourceLocation): unknown => {
    if (v instanceof VaultText) {
      inline++;
      const plain = decryptAnsibleVault(Buffer.from(v.envelope, 'utf8'), password, `the !vault value at ${formatLocation(where)}`);
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(plain);
      } finally {
        plain.fill(0);
      }
    }
    if (v instanceof UnsafeText) return v.text;
    if (Array.isArray(v)) return v.map((x) => decrypt(x, where));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decrypt(x, where)]));
    return v;
  };
  const values = Object.fromEntries(Object.entries(mapping?.values ?? {}).map(([k, v]) => [k, decrypt(v, mapping!.locations[k]!)]));
  if (inline === 0) {
    throw new ConfigError(`${file} holds nothing encrypted with Ansible Vault (it is not encrypted whole, and has no !vault value)`, undefined, {
      hint: 'its variables are not secrets: keep them in the inventory (group_vars/ beside an Ansible inventory is read as it is)',
    });
  }
  return { text: YAML.stringify(values), inline, differ: [] };
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
