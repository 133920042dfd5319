// group_vars/ and host_vars/ as Ansible's host_group_vars plugin finds and reads them
// (plugins/vars/host_group_vars.py, parsing/dataloader.py find_vars_files):
//
// - for a group or host NAME, the first of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` that
//   exists is used; if it is a directory, every file in it is read, in sorted order, into
//   subdirectories (those without an extension), skipping hidden files, `~` backups and files
//   with another extension;
// - a file that is empty is skipped; otherwise it must be a mapping;
// - a file encrypted whole by ansible-vault is decrypted, and so is every inline `!vault |`
//   value: such values are secrets (the caller masks them);
// - `!unsafe` strings are kept as written and never rendered.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, type SourceLocation } from '../errors.js';
import { isAnsibleVault } from '../vault/ansible.js';
import type { RawVars } from './raw.js';
import { UnsafeText, VaultText, parseAnsibleYaml, varsMapping } from './pyyaml.js';

export const VARS_EXTENSIONS = ['.yml', '.yaml', '.json'];

export interface VarsFile {
  /** As shown in messages. */
  file: string;
  vars: RawVars;
  /** Variables whose value is, or holds, a value decrypted from Ansible Vault. */
  secrets: Set<string>;
  /** Variables whose value holds an `!unsafe` string: taken as written, never rendered. */
  unsafe: Set<string>;
  /** The whole file was encrypted. */
  encrypted: boolean;
}

/** Decrypts an Ansible Vault envelope; `what` names it in messages (never its content). */
export type AnsibleDecrypt = (envelope: Buffer, what: string, where: SourceLocation) => Promise<Buffer>;

export interface ReadOptions {
  decrypt: AnsibleDecrypt;
  /** Every decrypted value, as soon as it is known (for the redactor). */
  onSecret: (value: unknown) => void;
  display: (abs: string) => string;
}

/** The files Ansible reads for the group or host `name` under `dir` (group_vars or host_vars). */
export function findVarsFiles(dir: string, name: string): string[] {
  if (name.startsWith('/') || !isDirectory(dir)) return [];
  for (const ext of ['', ...VARS_EXTENSIONS]) {
    const full = path.join(dir, name + ext);
    if (!existsSync(full)) continue;
    return isDirectory(full) ? filesIn(full) : [full];
  }
  return [];
}

function filesIn(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    if (entry.startsWith('.') || entry.endsWith('~')) continue;
    const full = path.join(dir, entry);
    const ext = path.extname(entry);
    if (isDirectory(full)) {
      if (!ext) found.push(...filesIn(full));
    } else if (!ext || VARS_EXTENSIONS.includes(ext)) found.push(full);
  }
  return found;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** One vars file, decrypted where it needs to be; null when it is empty. */
export async function readVarsFile(abs: string, opts: ReadOptions): Promise<VarsFile | null> {
  const file = opts.display(abs);
  let data: Buffer;
  try {
    data = readFileSync(abs);
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const encrypted = isAnsibleVault(data);
  const text = encrypted ? decryptedText(await opts.decrypt(data, file, { file }), file) : utf8(data, file);
  const y = parseAnsibleYaml(text, file, { secret: encrypted });
  const mapping = varsMapping(y, encrypted ? `${file} (decrypted)` : file);
  if (!mapping || Object.keys(mapping.values).length === 0) return null;
  const out: VarsFile = { file, vars: { values: {}, locations: mapping.locations }, secrets: new Set(), unsafe: new Set(), encrypted };
  for (const [key, raw] of Object.entries(mapping.values)) {
    const where = mapping.locations[key]!;
    const found = { vault: false, unsafe: false };
    const value = await plain(raw, found, (envelope) => opts.decrypt(Buffer.from(envelope, 'utf8'), `the !vault value of ${key} in ${file}`, where), file);
    out.vars.values[key] = value;
    if (encrypted || found.vault) {
      out.secrets.add(key);
      opts.onSecret(value);
    }
    if (found.unsafe) out.unsafe.add(key);
  }
  return out;
}

/** The value with every inline vault decrypted and every !unsafe string unwrapped. */
async function plain(v: unknown, found: { vault: boolean; unsafe: boolean }, decrypt: (envelope: string) => Promise<Buffer>, file: string): Promise<unknown> {
  if (v instanceof VaultText) {
    found.vault = true;
    return decryptedText(await decrypt(v.envelope), file);
  }
  if (v instanceof UnsafeText) {
    found.unsafe = true;
    return v.text;
  }
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (const x of v) out.push(await plain(x, found, decrypt, file));
    return out;
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await plain(x, found, decrypt, file);
    return out;
  }
  return v;
}

function utf8(data: Buffer, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new ConfigError(`${file} is not UTF-8 text`);
  }
}

/** Decrypted bytes as text, the bytes wiped (the string is what keel keeps, and masks). */
function decryptedText(data: Buffer, file: string): string {
  try {
    return utf8(data, `${file} (decrypted)`);
  } finally {
    data.fill(0);
  }
}
