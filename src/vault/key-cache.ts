// Where `keel secrets unlock` keeps a vault's file key: one 0600 file per vault in a 0700
// directory of the user's, on a tmpfs ($XDG_RUNTIME_DIR/keel, else /dev/shm/keel-<uid>), so
// the key never reaches a disk (swap aside) and other users cannot read it. Expiry is checked
// on every read: an expired or malformed entry is wiped and ignored. The entry also records a
// hash of the vault's header, so a key that no longer fits (rekey, another person's edit) is
// dropped instead of used.
import * as fs from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

export interface KeyEntry {
  /** Absolute path of the vault (its realpath), to tell entries apart. */
  vault: string;
  env: string;
  /** headerDigest() of the vault the key opens. */
  header: string;
  fileKey: Uint8Array;
  /** Epoch milliseconds. */
  expires: number;
}

/** The longest `keel secrets unlock --for` allows. */
export const MAX_UNLOCK_MS = 24 * 3600_000;

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

function inMemory(dir: string): boolean {
  try {
    const t = fs.statfsSync(dir).type;
    return t === TMPFS_MAGIC || t === RAMFS_MAGIC;
  } catch {
    return false;
  }
}

function uid(): number {
  return process.getuid?.() ?? -1;
}

/** The cache directory for this user, or null when there is no tmpfs to put it on. Nothing is
 *  created here: readers that find no directory simply find no key. */
export function keyCacheDir(vars: Record<string, string | undefined>): string | null {
  if (typeof process.getuid !== 'function') return null; // no per-user permissions to rely on
  const runtime = vars.XDG_RUNTIME_DIR;
  if (runtime && runtime.startsWith('/') && inMemory(runtime)) return join(runtime, 'keel');
  if (inMemory('/dev/shm')) return join('/dev/shm', `keel-${uid()}`);
  return null;
}

/** Why a directory cannot hold keys, or null when it is a private directory of ours. */
function notPrivate(st: fs.Stats): string | null {
  if (!st.isDirectory()) return 'not a directory';
  if (st.uid !== uid()) return `owned by uid ${st.uid}, not by you (${uid()})`;
  if (st.mode & 0o077) return `mode ${(st.mode & 0o777).toString(8)}, not 700`;
  return null;
}

/** Creates the directory (0700) or checks the existing one: /dev/shm is shared by every user,
 *  and someone else may have created keel-<uid> first to read what we put in it. */
export function ensurePrivateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ConfigError(`cannot create ${dir} for the unlocked key: ${(err as Error).message}`);
    }
  }
  const why = notPrivate(fs.lstatSync(dir));
  if (why) {
    throw new ConfigError(`${dir} is not a private directory (${why}), so keel will not keep a key in it`, undefined, {
      hint: `remove it if it is not yours, or set XDG_RUNTIME_DIR to a private tmpfs directory`,
    });
  }
}

function entryFile(dir: string, vault: string): string {
  return join(dir, `${createHash('sha256').update(vault).digest('hex').slice(0, 32)}.filekey`);
}

export type ReadResult = { entry: KeyEntry } | { entry?: undefined; dropped?: 'expired' | 'invalid'; expires?: number };

/** The entry for a vault, if there is a valid, unexpired one. Expired and malformed entries
 *  (this vault's, and other vaults' expired ones) are wiped on the way. */
export function readKey(dir: string | null, vault: string, now = Date.now()): ReadResult {
  if (!dir) return {};
  try {
    if (notPrivate(fs.lstatSync(dir))) return {}; // never trust (or touch) a directory that is not ours
  } catch {
    return {};
  }
  const file = entryFile(dir, vault);
  sweepExpired(dir, now, file);
  let raw: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== uid() || st.mode & 0o077) {
        wipeFile(file);
        return { dropped: 'invalid' };
      }
      raw = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return {}; // no entry (or a symlink, which O_NOFOLLOW refuses)
  }
  const entry = parseEntry(raw);
  if (!entry || entry.vault !== vault || entry.expires > now + MAX_UNLOCK_MS) {
    wipeFile(file);
    return { dropped: 'invalid' };
  }
  if (entry.expires <= now) {
    wipeFile(file);
    return { dropped: 'expired', expires: entry.expires };
  }
  return { entry };
}

function parseEntry(raw: string): KeyEntry | null {
  try {
    const j = JSON.parse(raw) as Record<string, unknown>;
    if (j.v !== 1 || typeof j.vault !== 'string' || typeof j.env !== 'string' || typeof j.header !== 'string') return null;
    if (typeof j.key !== 'string' || typeof j.expires !== 'number') return null;
    const fileKey = Buffer.from(j.key, 'base64');
    if (fileKey.length !== 16) return null;
    return { vault: j.vault, env: j.env, header: j.header, fileKey: new Uint8Array(fileKey), expires: j.expires };
  } catch {
    return null;
  }
}

/** Writes (or replaces) the entry: a 0600 temporary file renamed over the old one. */
export function writeKey(dir: string, entry: KeyEntry): void {
  ensurePrivateDir(dir);
  sweepExpired(dir);
  const file = entryFile(dir, entry.vault);
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const body = JSON.stringify({
    v: 1,
    vault: entry.vault,
    env: entry.env,
    header: entry.header,
    key: Buffer.from(entry.fileKey).toString('base64'),
    expires: entry.expires,
  });
  try {
    fs.writeFileSync(tmp, body, { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (err) {
    wipeFile(tmp);
    throw new ConfigError(`cannot write the unlocked key to ${dir}: ${(err as Error).message}`);
  }
}

/** Forgets a vault's key; true when there was one. */
export function removeKey(dir: string | null, vault: string): boolean {
  if (!dir) return false;
  return wipeFile(entryFile(dir, vault));
}

/** Forgets every key of this user; returns how many there were. */
export function removeAllKeys(dir: string | null): number {
  let n = 0;
  for (const name of entryNames(dir)) if (wipeFile(join(dir!, name))) n++;
  return n;
}

/** Wipes the entries of other vaults that have expired (nobody would read them again).
 *  `except`: the entry the caller is about to read, and report on, itself. */
export function sweepExpired(dir: string, now = Date.now(), except?: string): void {
  for (const name of entryNames(dir)) {
    const file = join(dir, name);
    if (file === except) continue;
    try {
      const e = parseEntry(fs.readFileSync(file, 'utf8'));
      if (!e || e.expires <= now || e.expires > now + MAX_UNLOCK_MS) wipeFile(file);
    } catch {
      // gone meanwhile
    }
  }
}

function entryNames(dir: string | null): string[] {
  if (!dir) return [];
  try {
    if (notPrivate(fs.lstatSync(dir))) return [];
    return fs.readdirSync(dir).filter((n) => /^[0-9a-f]{32}\.filekey(\.[0-9a-f]{12}\.tmp)?$/.test(n));
  } catch {
    return [];
  }
}

/** Overwrites with zeros (on tmpfs this does reach the page that held the key), unlinks. */
function wipeFile(file: string): boolean {
  try {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
    try {
      fs.writeSync(fd, Buffer.alloc(fs.fstatSync(fd).size));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // still unlink below
  }
  try {
    fs.unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}
