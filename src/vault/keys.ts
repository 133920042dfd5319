// Where the keys for an environment's vault come from. Passphrase: $KEEL_VAULT_PASSWORD,
// secrets/<env>.password, or a prompt. Identities: $KEEL_AGE_IDENTITY, $KEEL_AGE_IDENTITY_FILE,
// ~/.config/keel/age/<env>.key, secrets/<env>.key. Recipients: secrets/<env>.recipients.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Encrypter, identityToRecipient } from 'age-encryption';
import { ConfigError } from '../errors.js';
import type { VaultPaths } from './paths.js';

/** Reads a line from the person at the terminal; `hidden` turns echo off. */
export type Prompt = (question: string, opts: { hidden: boolean }) => Promise<string>;

/** Everything key lookup depends on, so tests can pass their own environment. */
export interface KeyContext {
  root: string;
  env: string;
  paths: VaultPaths;
  vars: Record<string, string | undefined>;
  home: string;
  /** Undefined when nobody can be asked (not a TTY). */
  prompt?: Prompt;
}

export interface Passphrase {
  passphrase: string;
  source: string;
}

export interface IdentitySet {
  identities: string[];
  /** Public keys of those identities, for messages. */
  publicKeys: string[];
  source: string;
}

export interface RecipientLine {
  key: string;
  comment: string;
  line: number;
}

export function passphrasesFromConfig(kc: KeyContext): Passphrase[] {
  const found: Passphrase[] = [];
  const fromEnv = kc.vars.KEEL_VAULT_PASSWORD;
  if (fromEnv) found.push({ passphrase: fromEnv, source: '$KEEL_VAULT_PASSWORD' });
  if (existsSync(kc.paths.password)) {
    const text = readFileSync(kc.paths.password, 'utf8').replace(/\r?\n$/, '');
    if (!text) throw new ConfigError(`secrets/${kc.env}.password is empty`);
    found.push({ passphrase: text, source: `secrets/${kc.env}.password` });
  }
  return found;
}

export async function promptPassphrase(kc: KeyContext, purpose: string): Promise<Passphrase | null> {
  if (!kc.prompt) return null;
  const p = await kc.prompt(`Passphrase for ${purpose}: `, { hidden: true });
  if (!p) throw new ConfigError('empty passphrase');
  return { passphrase: p, source: 'the prompt' };
}

/** A passphrase for encrypting: configured, else asked twice. */
export async function newPassphrase(kc: KeyContext, purpose: string, envVar?: string): Promise<Passphrase> {
  if (envVar && kc.vars[envVar]) return { passphrase: kc.vars[envVar]!, source: `$${envVar}` };
  if (!envVar) {
    const configured = passphrasesFromConfig(kc)[0];
    if (configured) return configured;
  }
  if (!kc.prompt) {
    throw new ConfigError(`no passphrase to encrypt ${purpose}`, undefined, {
      hint: envVar
        ? `set ${envVar}, or run this on a terminal to be asked`
        : `set KEEL_VAULT_PASSWORD, write it to secrets/${kc.env}.password (git-ignored), ` +
          `list age public keys in secrets/${kc.env}.recipients, or run this on a terminal`,
    });
  }
  const a = await kc.prompt(`New passphrase for ${purpose}: `, { hidden: true });
  if (!a) throw new ConfigError('empty passphrase');
  const b = await kc.prompt('Repeat it: ', { hidden: true });
  if (a !== b) throw new ConfigError('the two passphrases differ; nothing was changed');
  return { passphrase: a, source: 'the prompt' };
}

export async function identitiesFromConfig(kc: KeyContext): Promise<IdentitySet[]> {
  const sets: IdentitySet[] = [];
  const add = async (text: string, source: string) => {
    const identities = parseIdentities(text, source);
    const publicKeys: string[] = [];
    for (const id of identities) {
      try {
        publicKeys.push(await identityToRecipient(id));
      } catch {
        throw new ConfigError(`${source}: an entry is not a valid age identity (AGE-SECRET-KEY-1...)`);
      }
    }
    if (identities.length) sets.push({ identities, publicKeys, source });
  };
  if (kc.vars.KEEL_AGE_IDENTITY) await add(kc.vars.KEEL_AGE_IDENTITY, '$KEEL_AGE_IDENTITY');
  const file = kc.vars.KEEL_AGE_IDENTITY_FILE;
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`$KEEL_AGE_IDENTITY_FILE names ${file}, which does not exist`);
    await add(readFileSync(file, 'utf8'), file);
  }
  for (const path of [join(kc.home, '.config', 'keel', 'age', `${kc.env}.key`), kc.paths.key]) {
    if (existsSync(path)) await add(readFileSync(path, 'utf8'), path.startsWith(kc.root) ? path.slice(kc.root.length + 1) : path);
  }
  return sets;
}

/** age identity file syntax: one AGE-SECRET-KEY-1... per line, `#` comments, blank lines. */
export function parseIdentities(text: string, source: string): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    // Never echo the line: it is a private key, or a typo of one.
    if (!/^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/.test(line)) {
      throw new ConfigError(`line ${i + 1} is not an age identity (AGE-SECRET-KEY-1...)`, { file: source, line: i + 1 });
    }
    out.push(line);
  });
  return out;
}

export function readRecipients(kc: KeyContext): RecipientLine[] | null {
  if (!existsSync(kc.paths.recipients)) return null;
  return parseRecipients(readFileSync(kc.paths.recipients, 'utf8'), `secrets/${kc.env}.recipients`);
}

export function parseRecipients(text: string, source: string): RecipientLine[] {
  const out: RecipientLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const key = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    const comment = hash >= 0 ? raw.slice(hash + 1).trim() : '';
    if (!key) return;
    if (!isRecipientSyntax(key)) {
      throw new ConfigError(`'${key}' is not an age public key (age1...)`, { file: source, line: i + 1 });
    }
    out.push({ key, comment, line: i + 1 });
  });
  return out;
}

export function isRecipientSyntax(key: string): boolean {
  return /^age1[02-9ac-hj-np-z]{20,}$/.test(key);
}

/** typage only rejects a bad recipient when encrypting; check each one up front. */
export async function checkRecipient(key: string, where: string): Promise<void> {
  const e = new Encrypter();
  try {
    if (!isRecipientSyntax(key)) throw new Error('syntax');
    e.addRecipient(key);
    await e.encrypt('');
  } catch {
    throw new ConfigError(`'${key}' is not a valid age public key (age1...)`, { file: where });
  }
}

export function describeRecipients(lines: RecipientLine[]): string {
  return lines.map((r) => `  ${r.key}${r.comment ? `  # ${r.comment}` : ''}`).join('\n');
}
