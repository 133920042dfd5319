// Opening and saving an environment's vault: find the keys, decrypt with a clear error when
// they don't fit, encrypt to the recipients file or a passphrase, write atomically.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { BugError, ConfigError } from '../errors.js';
import { type AtomicFs, writeFileAtomic } from './atomic.js';
import { type Credential, type EncryptTarget, type HeaderInfo, decryptWith, describeHeader, encryptText, inspectHeader, unarmor } from './age-file.js';
import { keyCacheDir } from './key-cache.js';
import { afterSave, isUnlocked, tryUnlockedKey } from './unlocked-key.js';
import {
  type KeyContext,
  type Prompt,
  checkRecipient,
  describeRecipients,
  identitiesFromConfig,
  newPassphrase,
  passphrasesFromConfig,
  promptPassphrase,
  readRecipients,
} from './keys.js';
import { vaultPaths } from './paths.js';

export interface VaultContext extends KeyContext {
  interactive: boolean;
  /** Injectable for tests (a full disk). */
  fs?: AtomicFs;
  /** scrypt work factor for new passphrase encryptions (age's default, 18, when unset). */
  logN?: number;
  /** Where unlocked file keys live (key-cache.ts); null: no unlocking here. */
  keyCacheDir: string | null;
  /** Things the person should know that are not errors (an unlocked key was used). */
  notice: (message: string) => void;
}

export interface VaultOptions {
  interactive: boolean;
  vars?: Record<string, string | undefined>;
  home?: string;
  prompt?: Prompt;
  fs?: AtomicFs;
  logN?: number;
  /** Overrides the per-user tmpfs directory for unlocked keys (tests); null disables it. */
  keyCacheDir?: string | null;
  notice?: (message: string) => void;
}

export function vaultContext(root: string, env: string, opts: VaultOptions): VaultContext {
  const vars = opts.vars ?? process.env;
  return {
    root,
    env,
    paths: vaultPaths(root, env),
    vars,
    home: opts.home ?? homedir(),
    prompt: opts.interactive ? opts.prompt : undefined,
    interactive: opts.interactive,
    fs: opts.fs,
    logN: opts.logN,
    keyCacheDir: opts.keyCacheDir === undefined ? keyCacheDir(vars) : opts.keyCacheDir,
    notice: opts.notice ?? ((m) => process.stderr.write(m + '\n')),
  };
}

export interface OpenedVault {
  text: string;
  credential: Credential;
  header: HeaderInfo;
}

export interface OpenOptions {
  /** May a key kept by `keel secrets unlock` open it? Yes for reading; commands that
   *  re-encrypt need the real passphrase anyway, so they open with it (and check it). */
  unlocked?: boolean;
}

/** Decrypts secrets/<env>.age; null when it does not exist. */
export async function openVault(vc: VaultContext, opts: OpenOptions = {}): Promise<OpenedVault | null> {
  if (!existsSync(vc.paths.vault)) return null;
  return openBytes(vc, readFileSync(vc.paths.vault), vc.paths.display, opts);
}

export async function requireVault(vc: VaultContext, opts: OpenOptions = {}): Promise<OpenedVault> {
  const opened = await openVault(vc, opts);
  if (!opened) {
    throw new ConfigError(`${vc.paths.display} does not exist`, undefined, {
      hint: `create it with: keel secrets init ${vc.env}`,
    });
  }
  return opened;
}

export async function openBytes(vc: VaultContext, raw: Uint8Array, display: string, opts: OpenOptions = {}): Promise<OpenedVault> {
  const bytes = unarmor(raw, display);
  const header = inspectHeader(bytes, display);
  if (opts.unlocked && header.scrypt) {
    const opened = await tryUnlockedKey(vc, bytes, header);
    if (opened) return opened;
  }
  const credentials = await credentialsFor(vc, header, display).catch((err: unknown) => {
    throw header.scrypt && !opts.unlocked && err instanceof ConfigError && isUnlocked(vc) ? unlockedIsNotEnough(err) : err;
  });
  // One derivation per distinct credential, and only until one fits: a command decrypts once.
  for (const cred of credentials) {
    const text = await decryptWith(bytes, cred, display);
    if (text !== null) return { text, credential: cred, header };
  }
  throw wrongKey(vc, display, header, credentials);
}

/** The keys to try on a file with this header, in order; asks on a terminal when a passphrase
 *  is needed and none is configured. Throws when there is nothing to try. */
export async function credentialsFor(vc: VaultContext, header: HeaderInfo, display: string): Promise<Credential[]> {
  const what = describeHeader(header);
  const credentials: Credential[] = [];
  if (header.scrypt) {
    const seen = new Set<string>();
    for (const p of passphrasesFromConfig(vc)) {
      if (seen.has(p.passphrase)) continue; // $KEEL_VAULT_PASSWORD equal to the password file
      seen.add(p.passphrase);
      credentials.push({ kind: 'passphrase', secret: p.passphrase, source: p.source });
    }
    if (!credentials.length) {
      const asked = await promptPassphrase(vc, display);
      if (asked) credentials.push({ kind: 'passphrase', secret: asked.passphrase, source: asked.source });
    }
    if (!credentials.length) {
      throw new ConfigError(`cannot decrypt ${display}: it is ${what}, and no passphrase was given`, undefined, {
        hint: `set KEEL_VAULT_PASSWORD, put it in secrets/${vc.env}.password (git-ignored), or run on a terminal to be asked`,
      });
    }
  } else {
    const sets = await identitiesFromConfig(vc);
    for (const s of sets) credentials.push({ kind: 'identity', secret: s.identities, source: `${s.source} (${s.publicKeys.join(', ')})` });
    if (!credentials.length) {
      throw new ConfigError(`cannot decrypt ${display}: it is ${what}, and no age identity was found`, undefined, {
        hint: identityHint(vc),
      });
    }
  }
  return credentials;
}

/** A command that writes (or diffs) needs the passphrase even while the vault is unlocked. */
function unlockedIsNotEnough(err: ConfigError): ConfigError {
  return new ConfigError(err.message, undefined, {
    hint:
      `${err.hint ? err.hint + '; ' : ''}the vault is unlocked, but the kept key only serves commands that read it ` +
      '(get, view, provision, inventory): saving wraps a new file key with the passphrase, and diff tags are keyed by it',
  });
}

function identityHint(vc: VaultContext): string {
  return (
    'set KEEL_AGE_IDENTITY (AGE-SECRET-KEY-1...) or KEEL_AGE_IDENTITY_FILE, ' +
    `or put your key in ~/.config/keel/age/${vc.env}.key or secrets/${vc.env}.key (git-ignored)`
  );
}

export function wrongKey(vc: VaultContext, display: string, header: HeaderInfo, tried: Credential[]): ConfigError {
  const what = describeHeader(header);
  const sources = tried.map((c) => c.source).join('; ');
  if (header.scrypt) {
    return new ConfigError(`cannot decrypt ${display}: it is ${what}, and the passphrase from ${sources} is wrong`);
  }
  let listed = '';
  try {
    const r = readRecipients(vc);
    listed = r?.length
      ? `\nsecrets/${vc.env}.recipients lists:\n${describeRecipients(r)}`
      : `\n(secrets/${vc.env}.recipients does not exist, so keel cannot tell which keys they are)`;
  } catch {
    // an unreadable recipients file must not hide the real error
  }
  return new ConfigError(`cannot decrypt ${display}: it is ${what}, and none of your identities is one of them (tried ${sources})${listed}`, undefined, {
    hint: `ask someone who can decrypt it to run: keel secrets recipients add ${vc.env} <your age1... public key>`,
  });
}

/** What a save encrypts to: the recipients file if there is one, else a passphrase (the one
 *  that opened the vault, when it was a passphrase). */
export async function encryptionTarget(vc: VaultContext, opened?: OpenedVault): Promise<EncryptTarget> {
  const recipients = readRecipients(vc);
  if (recipients) {
    if (!recipients.length) throw new ConfigError(`secrets/${vc.env}.recipients lists no public keys`);
    for (const r of recipients) await checkRecipient(r.key, `secrets/${vc.env}.recipients:${r.line}`);
    return { recipients: recipients.map((r) => r.key) };
  }
  if (opened?.credential.kind === 'filekey') throw new BugError('a vault opened with an unlocked key cannot be re-encrypted');
  if (opened?.credential.kind === 'passphrase') return { passphrase: opened.credential.secret, logN: vc.logN };
  const p = await newPassphrase(vc, vc.paths.display);
  return { passphrase: p.passphrase, logN: vc.logN };
}

/** Encrypts and writes the vault. `keepUnlocked`: the same passphrase as before (set, edit),
 *  so an unlocked vault stays unlocked; a rekey or a change of recipients forgets the key. */
export async function saveVault(vc: VaultContext, text: string, target: EncryptTarget, opts: { keepUnlocked: boolean }): Promise<void> {
  const saved = await encryptText(text, target);
  try {
    writeFileAtomic(vc.paths.vault, saved.bytes, { mode: 0o644, display: vc.paths.display, fs: vc.fs });
    afterSave(vc, saved, inspectHeader(saved.bytes, vc.paths.display), opts.keepUnlocked);
  } finally {
    saved.fileKey?.fill(0);
  }
}

export function describeTarget(t: EncryptTarget): string {
  return 'passphrase' in t ? 'a passphrase (scrypt)' : `${t.recipients.length} recipient(s)`;
}
