// Reading a vault with the file key `keel secrets unlock` kept (key-cache.ts), and keeping that
// key in step when keel itself rewrites the vault. Every use is announced through vc.notice:
// a cached key must never be used silently.
import { realpathSync } from 'node:fs';
import { type HeaderInfo, type Encrypted, decryptWith, headerDigest } from './age-file.js';
import { readKey, removeKey, writeKey } from './key-cache.js';
import type { OpenedVault, VaultContext } from './store.js';

/** Local wall-clock time of an expiry, with the date when it is not today. */
export function formatUntil(epochMs: number, now = Date.now()): string {
  const d = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === new Date(now).toDateString() ? hm : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

export function vaultKeyId(vc: VaultContext): string {
  try {
    return realpathSync(vc.paths.vault);
  } catch {
    return vc.paths.vault;
  }
}

/** Whether a key is kept for this vault (it may still turn out not to fit). */
export function isUnlocked(vc: VaultContext): boolean {
  const found = readKey(vc.keyCacheDir, vaultKeyId(vc));
  found.entry?.fileKey.fill(0);
  return Boolean(found.entry);
}

/** The vault opened with its unlocked key, or null (not unlocked, expired, or the key no longer
 *  fits: then it is forgotten and the caller goes on with the passphrase). */
export async function tryUnlockedKey(vc: VaultContext, bytes: Uint8Array, header: HeaderInfo): Promise<OpenedVault | null> {
  const id = vaultKeyId(vc);
  const found = readKey(vc.keyCacheDir, id);
  if (!found.entry) {
    if (found.dropped === 'expired') {
      vc.notice(`vault ${vc.env}: the unlocked key expired at ${formatUntil(found.expires!)} and was forgotten`);
    }
    return null;
  }
  const { entry } = found;
  try {
    if (entry.header !== headerDigest(bytes, header)) {
      removeKey(vc.keyCacheDir, id);
      vc.notice(`vault ${vc.env}: ${vc.paths.display} changed since it was unlocked (rekeyed, or saved by someone else); the unlocked key was forgotten`);
      return null;
    }
    const credential = { kind: 'filekey' as const, secret: entry.fileKey, source: 'the unlocked key' };
    let text: string | null = null;
    try {
      text = await decryptWith(bytes, credential, vc.paths.display);
    } catch {
      // a matching header whose key fails: the cache entry is damaged, not the vault (the
      // passphrase path below reports real damage)
    }
    if (text === null) {
      removeKey(vc.keyCacheDir, id);
      vc.notice(`vault ${vc.env}: the unlocked key does not open ${vc.paths.display}; it was forgotten`);
      return null;
    }
    vc.notice(`vault ${vc.env}: using the unlocked key (until ${formatUntil(entry.expires)}, \`keel secrets lock ${vc.env}\` to forget it)`);
    return { text, credential, header };
  } finally {
    entry.fileKey.fill(0);
  }
}

/** After keel rewrote the vault: an unlocked vault stays unlocked (same expiry) when the new
 *  file is encrypted to the same passphrase (`keep`); otherwise (rekey, new recipients) the
 *  old key is forgotten, since whoever rotates a key wants the old one gone. */
export function afterSave(vc: VaultContext, saved: Encrypted, header: HeaderInfo, keep: boolean): void {
  const id = vaultKeyId(vc);
  const found = readKey(vc.keyCacheDir, id);
  if (!found.entry) return;
  found.entry.fileKey.fill(0);
  if (keep && saved.fileKey && vc.keyCacheDir) {
    writeKey(vc.keyCacheDir, { ...found.entry, header: headerDigest(saved.bytes, header), fileKey: saved.fileKey });
    vc.notice(`vault ${vc.env}: still unlocked until ${formatUntil(found.entry.expires)} (the kept key now opens the saved file)`);
    return;
  }
  removeKey(vc.keyCacheDir, id);
  vc.notice(`vault ${vc.env}: the unlocked key was forgotten (the vault was re-encrypted); run \`keel secrets unlock ${vc.env}\` again if you want it`);
}
