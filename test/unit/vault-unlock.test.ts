// The unlocked-key cache: private tmpfs directory, 0600 entries, expiry enforced on read.
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_UNLOCK_MS, ensurePrivateDir, keyCacheDir, readKey, removeAllKeys, removeKey, writeKey } from '../../src/vault/key-cache.js';
import { parseDuration } from '../../src/vault/unlock.js';
import { formatUntil } from '../../src/vault/unlocked-key.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
function shmDir(): string {
  const d = mkdtempSync(join('/dev/shm', 'keel-unit-'));
  made.push(d);
  return d;
}
const entry = (vault: string, expires: number) => ({
  vault,
  env: 'staging',
  header: 'h'.repeat(64),
  fileKey: new Uint8Array(16).fill(5),
  expires,
});

describe('key cache', () => {
  it('writes 0600 entries in a 0700 directory; reads them back until they expire', () => {
    const dir = join(shmDir(), 'keel');
    const now = Date.now();
    writeKey(dir, entry('/p/secrets/staging.age', now + 60_000));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = fs.readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    const got = readKey(dir, '/p/secrets/staging.age', now);
    expect(got.entry?.fileKey).toEqual(new Uint8Array(16).fill(5));
    expect(readKey(dir, '/p/secrets/other.age', now)).toEqual({});

    // expiry is enforced by the reader: the entry is wiped, not just skipped
    expect(readKey(dir, '/p/secrets/staging.age', now + 60_000)).toEqual({ dropped: 'expired', expires: now + 60_000 });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('drops entries that are malformed, too far in the future, or readable by others', () => {
    const dir = join(shmDir(), 'keel');
    const now = Date.now();
    writeKey(dir, entry('/v.age', now + MAX_UNLOCK_MS + 60_000));
    expect(readKey(dir, '/v.age', now)).toEqual({ dropped: 'invalid' });
    writeKey(dir, entry('/v.age', now + 1000));
    const file = join(dir, fs.readdirSync(dir)[0]!);
    fs.chmodSync(file, 0o644);
    expect(readKey(dir, '/v.age', now)).toEqual({ dropped: 'invalid' });
    expect(fs.existsSync(file)).toBe(false);
    writeKey(dir, entry('/v.age', now + 1000));
    fs.writeFileSync(join(dir, fs.readdirSync(dir)[0]!), '{"v":1,"vault":"/v.age"}');
    expect(readKey(dir, '/v.age', now)).toEqual({ dropped: 'invalid' });
  });

  it('reading or writing sweeps expired entries of other vaults; lock removes one or all', () => {
    const dir = join(shmDir(), 'keel');
    const now = Date.now();
    writeKey(dir, entry('/old.age', now - 1));
    writeKey(dir, entry('/a.age', now + 60_000));
    expect(fs.readdirSync(dir)).toHaveLength(1);
    writeKey(dir, entry('/soon.age', now + 1000));
    expect(readKey(dir, '/a.age', now + 2000).entry?.vault).toBe('/a.age');
    expect(fs.readdirSync(dir)).toHaveLength(1);
    writeKey(dir, entry('/b.age', now + 60_000));
    expect(removeKey(dir, '/a.age')).toBe(true);
    expect(removeKey(dir, '/a.age')).toBe(false);
    expect(removeAllKeys(dir)).toBe(1);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses a directory someone else made (or left open) in the shared /dev/shm', () => {
    const base = shmDir();
    const open = join(base, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    expect(() => ensurePrivateDir(open)).toThrow(/not a private directory \(mode 777, not 700\)/);
    expect(() => writeKey(open, entry('/v.age', Date.now() + 1000))).toThrow(/not a private directory/);
    expect(fs.readdirSync(open)).toEqual([]);
    const link = join(base, 'link');
    fs.symlinkSync(join(base, 'elsewhere'), link);
    expect(() => ensurePrivateDir(link)).toThrow(/not a directory/);
    if (process.getuid?.() === 0) {
      const theirs = join(base, 'theirs');
      fs.mkdirSync(theirs, { mode: 0o700 });
      fs.chownSync(theirs, 4242, 4242);
      expect(() => ensurePrivateDir(theirs)).toThrow(/owned by uid 4242/);
      // and a reader does not trust it either
      expect(readKey(theirs, '/v.age')).toEqual({});
    }
  });

  it('lives in $XDG_RUNTIME_DIR when that is a tmpfs, else in /dev/shm/keel-<uid>, never on disk', () => {
    const runtime = shmDir();
    expect(keyCacheDir({ XDG_RUNTIME_DIR: runtime })).toBe(join(runtime, 'keel'));
    const onDisk = mkdtempSync(join(tmpdir(), 'keel-not-tmpfs-'));
    made.push(onDisk);
    const fallback = keyCacheDir({ XDG_RUNTIME_DIR: onDisk });
    if (fs.statfsSync(onDisk).type !== 0x01021994) expect(fallback).toBe(`/dev/shm/keel-${process.getuid!()}`);
    expect(keyCacheDir({ XDG_RUNTIME_DIR: 'relative/dir' })).toBe(`/dev/shm/keel-${process.getuid!()}`);
  });

  it('parses --for durations and refuses the rest', () => {
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('24h')).toBe(MAX_UNLOCK_MS);
    for (const bad of ['', '15', 'm', '0m', '1d', '15 m', '-5m']) expect(() => parseDuration(bad), bad).toThrow(/duration like 15m/);
    expect(() => parseDuration('25h')).toThrow(/longer than 24h/);
  });

  it('shows the expiry as a local time, with the date when it is not today', () => {
    const now = new Date(2030, 0, 15, 9, 0).getTime();
    expect(formatUntil(new Date(2030, 0, 15, 10, 42).getTime(), now)).toBe('10:42');
    expect(formatUntil(new Date(2030, 0, 16, 8, 5).getTime(), now)).toBe('2030-01-16 08:05');
  });
});
