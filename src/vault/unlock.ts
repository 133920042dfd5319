// `keel secrets unlock|lock|status`: keep a passphrase vault's file key for a while, like
// ssh-agent or sudo's timestamp, so that reading the vault skips the scrypt derivation (about
// a second and 256 MiB each time). Only the 16-byte file key is kept, never the plaintext;
// docs/vault.md weighs what that gives away.
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { describeHeader, headerDigest, inspectHeader, unarmor, unwrapFileKey } from './age-file.js';
import { MAX_UNLOCK_MS, ensurePrivateDir, readKey, removeAllKeys, removeKey, writeKey } from './key-cache.js';
import { type VaultContext, credentialsFor, wrongKey } from './store.js';
import { formatUntil, vaultKeyId } from './unlocked-key.js';

/** "15m", "2h", "1h30m", "90s" → milliseconds, at most MAX_UNLOCK_MS. */
export function parseDuration(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  const ms = m && text.trim() ? (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000 : NaN;
  if (!(ms > 0)) throw new ConfigError(`--for takes a duration like 15m, 2h, 1h30m or 90s, not '${text}'`);
  if (ms > MAX_UNLOCK_MS) throw new ConfigError(`--for ${text} is longer than 24h, the most keel keeps a key`);
  return ms;
}

function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return [h ? `${h} h` : '', m ? `${m} min` : '', sec ? `${sec} s` : ''].filter(Boolean).join(' ');
}

function readVault(vc: VaultContext): { bytes: Uint8Array; header: ReturnType<typeof inspectHeader> } {
  if (!existsSync(vc.paths.vault)) {
    throw new ConfigError(`${vc.paths.display} does not exist`, undefined, { hint: `create it with: keel secrets init ${vc.env}` });
  }
  const bytes = unarmor(readFileSync(vc.paths.vault), vc.paths.display);
  return { bytes, header: inspectHeader(bytes, vc.paths.display) };
}

export async function unlockVault(vc: VaultContext, forMs: number, now = Date.now()): Promise<string> {
  const dir = vc.keyCacheDir;
  if (!dir) {
    throw new ConfigError('there is no memory-backed directory to keep the key in: neither $XDG_RUNTIME_DIR nor /dev/shm is a tmpfs', undefined, {
      hint: 'use an age identity instead (KEEL_AGE_IDENTITY, see docs/vault.md): it opens the vault in milliseconds',
    });
  }
  const { bytes, header } = readVault(vc);
  if (!header.scrypt) {
    throw new ConfigError(`${vc.paths.display} is ${describeHeader(header)}: your age identity opens it in milliseconds, there is nothing to unlock`);
  }
  ensurePrivateDir(dir); // before the passphrase is asked for, not after
  const credentials = await credentialsFor(vc, header, vc.paths.display);
  for (const cred of credentials) {
    const fileKey = await unwrapFileKey(bytes, header, cred, vc.paths.display);
    if (!fileKey) continue;
    const expires = now + forMs;
    try {
      writeKey(dir, { vault: vaultKeyId(vc), env: vc.env, header: headerDigest(bytes, header), fileKey, expires });
    } finally {
      fileKey.fill(0);
    }
    return (
      `unlocked ${vc.paths.display} until ${formatUntil(expires, now)} (${humanDuration(forMs)}): reading it needs no passphrase ` +
      `until then; \`keel secrets lock ${vc.env}\` forgets the key sooner`
    );
  }
  throw wrongKey(vc, vc.paths.display, header, credentials);
}

export function lockVault(vc: VaultContext): string {
  return removeKey(vc.keyCacheDir, vaultKeyId(vc)) ? `locked ${vc.paths.display}: the unlocked key is forgotten` : `${vc.paths.display} was not unlocked`;
}

export function lockAll(keyCacheDir: string | null): string {
  const n = removeAllKeys(keyCacheDir);
  return n ? `forgot ${n} unlocked key(s)` : 'no vault was unlocked';
}

export function vaultStatus(vc: VaultContext, now = Date.now()): string {
  if (!existsSync(vc.paths.vault)) return `${vc.paths.display} does not exist`;
  const { bytes, header } = readVault(vc);
  const what = `${vc.paths.display}: ${describeHeader(header)}`;
  if (!header.scrypt) return what;
  const found = readKey(vc.keyCacheDir, vaultKeyId(vc), now);
  if (!found.entry) return `${what}; locked`;
  found.entry.fileKey.fill(0);
  if (found.entry.header !== headerDigest(bytes, header)) {
    removeKey(vc.keyCacheDir, vaultKeyId(vc));
    return `${what}; locked (the kept key was for an earlier version of the file and is now forgotten)`;
  }
  return `${what}; unlocked until ${formatUntil(found.entry.expires, now)} (\`keel secrets lock ${vc.env}\` to forget the key)`;
}
