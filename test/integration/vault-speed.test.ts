// How often each `keel secrets` command derives a passphrase key (node:crypto's scrypt is
// counted, so the pure-JS one would show as 0), and `keel secrets unlock|lock|status`: the kept
// file key opens the vault for reads, announces itself, follows keel's own saves, and is
// dropped when it no longer fits or has expired.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Encrypter } from 'age-encryption';

vi.mock('node:crypto', async (original) => {
  const real = await original<typeof import('node:crypto')>();
  return { ...real, scrypt: vi.fn(real.scrypt) };
});
const crypto = await import('node:crypto');
const { hasBinary, makeProject, newIdentity, sh } = await import('../fixtures/vault/harness.js');
const { loadSecrets } = await import('../../src/vault/index.js');
type Project = ReturnType<typeof makeProject>;

const SECRET = 'unlock-test-secret-value';
const PASS = 'a passphrase';
let projects: Project[] = [];
let shm: string[] = [];
afterEach(() => {
  for (const p of projects) p.cleanup();
  for (const d of shm) rmSync(d, { recursive: true, force: true });
  projects = [];
  shm = [];
});
const derivations = () => vi.mocked(crypto.scrypt).mock.calls.length;
beforeEach(() => {
  vi.mocked(crypto.scrypt).mockClear(); // (returning the mock would make vitest call it as a teardown)
});

/** A passphrase vault holding SECRET; the key cache in a private tmpfs directory. */
async function passphraseProject(vars: Record<string, string> = { KEEL_VAULT_PASSWORD: PASS }) {
  const runtime = mkdtempSync('/dev/shm/keel-itest-');
  shm.push(runtime);
  const p = makeProject(vars);
  projects.push(p);
  const keys = join(runtime, 'keel');
  const keel = (args: string[], io: Parameters<Project['keel']>[1] = {}) => p.keel(args, { keyCacheDir: keys, ...io });
  expect((await keel(['init', 'stage'])).code).toBe(0);
  expect((await keel(['set', 'stage', 'db_password'], { readStdin: async () => SECRET })).code).toBe(0);
  return { p, keel, keys, runtime, vault: join(p.root, 'secrets', 'stage.age') };
}

async function counted<T>(fn: () => Promise<T>): Promise<{ result: T; n: number }> {
  vi.mocked(crypto.scrypt).mockClear();
  const result = await fn();
  return { result, n: derivations() };
}

describe('one decryption per command', () => {
  it('passphrase vault: one derivation to read, one more only to write a new file key', async () => {
    const { p, keel } = await passphraseProject();
    const ed = join(p.root, '..', 'ed.sh');
    writeFileSync(ed, `#!/bin/sh\nsed -i 's/^db_password: .*/db_password: edited/' "$1"\n`);
    chmodSync(ed, 0o755);
    const me = await newIdentity();
    const cases: Array<[string, string[], Parameters<Project['keel']>[1], number]> = [
      ['get', ['get', 'stage', 'db_password'], {}, 1],
      ['view', ['view', 'stage'], {}, 1],
      ['set (same value)', ['set', 'stage', 'db_password'], { readStdin: async () => SECRET }, 1],
      ['set', ['set', 'stage', 'other'], { readStdin: async () => 'x' }, 2],
      ['edit (no change)', ['edit', 'stage'], { vars: { KEEL_VAULT_PASSWORD: PASS, EDITOR: 'true' } }, 1],
      ['edit', ['edit', 'stage'], { vars: { KEEL_VAULT_PASSWORD: PASS, EDITOR: ed } }, 2],
      ['diff', ['diff', join(p.root, 'secrets', 'stage.age')], {}, 1],
      ['rekey', ['rekey', 'stage'], { vars: { KEEL_VAULT_PASSWORD: PASS, KEEL_VAULT_NEW_PASSWORD: PASS } }, 2],
      ['status', ['status', 'stage'], {}, 0],
      ['unlock', ['unlock', 'stage'], {}, 1],
      ['recipients add (now X25519)', ['recipients', 'add', 'stage', me.recipient], { vars: { KEEL_VAULT_PASSWORD: PASS, KEEL_AGE_IDENTITY: me.identity } }, 1],
      ['get (X25519)', ['get', 'stage', 'db_password'], { vars: { KEEL_AGE_IDENTITY: me.identity } }, 0],
    ];
    for (const [what, args, io, n] of cases) {
      const r = await counted(() => keel(args, io));
      expect(r.result.code, `${what}: ${r.result.out.all()}`).toBe(0);
      expect(r.n, what).toBe(n);
    }
  });

  it('the same passphrase in $KEEL_VAULT_PASSWORD and the password file is tried once; loadSecrets derives once', async () => {
    const { p, keel } = await passphraseProject();
    writeFileSync(join(p.root, 'secrets', 'stage.password'), PASS + '\n');
    expect((await counted(() => keel(['get', 'stage', 'db_password']))).n).toBe(1);
    // a wrong one first costs one more derivation per distinct passphrase, no more
    const wrongFirst = await counted(() => keel(['get', 'stage', 'db_password'], { vars: { KEEL_VAULT_PASSWORD: 'wrong' } }));
    expect(wrongFirst.result.out.stdout).toEqual([SECRET]);
    expect(wrongFirst.n).toBe(2);
    // the same wrong passphrase in both places is tried once
    writeFileSync(join(p.root, 'secrets', 'stage.password'), 'wrong\n');
    const bothWrong = await counted(() => keel(['get', 'stage', 'db_password'], { vars: { KEEL_VAULT_PASSWORD: 'wrong' } }));
    expect(bothWrong.result.code).toBe(1);
    expect(bothWrong.n).toBe(1);
    writeFileSync(join(p.root, 'secrets', 'stage.password'), PASS + '\n');

    const prev = process.env.KEEL_VAULT_PASSWORD;
    process.env.KEEL_VAULT_PASSWORD = PASS;
    try {
      const r = await counted(() => loadSecrets(p.root, 'stage', { interactive: false, notice: () => {} }));
      expect(r.result).toEqual({ db_password: SECRET });
      expect(r.n).toBe(1);
    } finally {
      if (prev === undefined) delete process.env.KEEL_VAULT_PASSWORD;
      else process.env.KEEL_VAULT_PASSWORD = prev;
    }
  });
});

describe('keel secrets unlock', () => {
  it('keeps only the file key (0600, 0700 dir); reads then need no passphrase and say so', async () => {
    const { p, keel, keys, runtime } = await passphraseProject();
    let r = await keel(['unlock', 'stage', '--for', '10m']);
    expect(r.code).toBe(0);
    expect(r.out.stdout[0]).toMatch(/^unlocked secrets\/stage\.age until (?:\d{4}-\d\d-\d\d )?\d\d:\d\d \(10 min\): reading it needs no passphrase/);
    expect(statSync(keys).mode & 0o777).toBe(0o700);
    const [file] = readdirSync(keys);
    expect(statSync(join(keys, file!)).mode & 0o777).toBe(0o600);
    const kept = readFileSync(join(keys, file!), 'utf8');
    for (const s of [SECRET, PASS, 'db_password']) expect(kept).not.toContain(s);

    const got = await counted(() => keel(['get', 'stage', 'db_password'], { vars: {} }));
    expect(got.result.out.stdout).toEqual([SECRET]);
    expect(got.result.out.stderr).toEqual([
      expect.stringMatching(/^vault stage: using the unlocked key \(until (?:\d{4}-\d\d-\d\d )?\d\d:\d\d, `keel secrets lock stage` to forget it\)$/),
    ]);
    expect(got.n).toBe(0);
    expect((await counted(() => keel(['view', 'stage'], { vars: {} }))).n).toBe(0);
    expect((await keel(['status', 'stage'])).out.stdout[0]).toMatch(
      /^secrets\/stage\.age: encrypted with a passphrase \(scrypt\); unlocked until (?:\d{4}-\d\d-\d\d )?\d\d:\d\d/,
    );

    // loadSecrets (provision, inventory) too, through the per-user directory it finds itself
    const notices: string[] = [];
    const prev = process.env.XDG_RUNTIME_DIR;
    process.env.XDG_RUNTIME_DIR = runtime;
    try {
      const r2 = await counted(() => loadSecrets(p.root, 'stage', { interactive: false, notice: (m) => notices.push(m) }));
      expect(r2.result).toEqual({ db_password: SECRET });
      expect(r2.n).toBe(0);
      expect(notices).toEqual([expect.stringMatching(/^vault stage: using the unlocked key/)]);
    } finally {
      if (prev === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = prev;
    }

    r = await keel(['lock', 'stage']);
    expect(r.out.stdout).toEqual(['locked secrets/stage.age: the unlocked key is forgotten']);
    expect(readdirSync(keys)).toEqual([]);
    expect((await keel(['lock', 'stage'])).out.stdout).toEqual(['secrets/stage.age was not unlocked']);
    const locked = await keel(['get', 'stage', 'db_password'], { vars: {} });
    expect(locked.code).toBe(1);
    expect(locked.out.stderr.join('\n')).toMatch(/no passphrase was given/);
  });

  it("keel's own saves keep it unlocked (same expiry); writing still needs the passphrase", async () => {
    const { keel } = await passphraseProject();
    await keel(['unlock', 'stage']);
    const noPass = await keel(['set', 'stage', 'k'], { vars: {}, readStdin: async () => 'v' });
    expect(noPass.code).toBe(1);
    expect(noPass.out.stderr.join('\n')).toMatch(/the vault is unlocked, but the kept key only serves commands that read it/);

    const set = await counted(() => keel(['set', 'stage', 'k'], { readStdin: async () => 'v' }));
    expect(set.n).toBe(2);
    expect(set.result.out.stderr).toEqual([expect.stringMatching(/^vault stage: still unlocked until (?:\d{4}-\d\d-\d\d )?\d\d:\d\d/)]);
    const got = await counted(() => keel(['get', 'stage', 'k'], { vars: {} }));
    expect(got.result.out.stdout).toEqual(['v']);
    expect(got.n).toBe(0);
  });

  it('forgets the key when the vault changes under it, expires, is rekeyed or gets recipients', async () => {
    const { keel, vault, keys } = await passphraseProject();
    // someone else saved the vault (git pull): same passphrase, new file key
    await keel(['unlock', 'stage']);
    const e = new Encrypter();
    e.setScryptWorkFactor(10);
    e.setPassphrase(PASS);
    writeFileSync(vault, await e.encrypt(`db_password: from-elsewhere\n`));
    let r = await keel(['get', 'stage', 'db_password']);
    expect(r.out.stdout).toEqual(['from-elsewhere']);
    expect(r.out.stderr).toEqual([
      'vault stage: secrets/stage.age changed since it was unlocked (rekeyed, or saved by someone else); the unlocked key was forgotten',
    ]);
    expect(readdirSync(keys)).toEqual([]);

    // expiry is enforced when the key is read
    await keel(['unlock', 'stage', '--for', '1s']);
    await new Promise((res) => setTimeout(res, 1100));
    r = await keel(['get', 'stage', 'db_password']);
    expect(r.out.stdout).toEqual(['from-elsewhere']);
    expect(r.out.stderr).toEqual([expect.stringMatching(/^vault stage: the unlocked key expired at \d\d:\d\d and was forgotten$/)]);
    expect(readdirSync(keys)).toEqual([]);

    // a damaged entry (its key replaced) is dropped and the passphrase used instead
    await keel(['unlock', 'stage']);
    const file = join(keys, readdirSync(keys)[0]!);
    const j = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...j, key: Buffer.alloc(16, 1).toString('base64') }));
    r = await keel(['get', 'stage', 'db_password']);
    expect(r.out.stdout).toEqual(['from-elsewhere']);
    expect(r.out.stderr).toEqual(['vault stage: the unlocked key does not open secrets/stage.age; it was forgotten']);

    await keel(['unlock', 'stage']);
    r = await keel(['rekey', 'stage'], { vars: { KEEL_VAULT_PASSWORD: PASS, KEEL_VAULT_NEW_PASSWORD: 'new one' } });
    expect(r.code).toBe(0);
    expect(r.out.stderr).toEqual([expect.stringMatching(/^vault stage: the unlocked key was forgotten \(the vault was re-encrypted\)/)]);
    expect((await keel(['status', 'stage'])).out.stdout[0]).toMatch(/; locked$/);

    const me = await newIdentity();
    await keel(['unlock', 'stage'], { vars: { KEEL_VAULT_PASSWORD: 'new one' } });
    r = await keel(['recipients', 'add', 'stage', me.recipient], { vars: { KEEL_VAULT_PASSWORD: 'new one', KEEL_AGE_IDENTITY: me.identity } });
    expect(r.code).toBe(0);
    expect(readdirSync(keys)).toEqual([]);
    r = await keel(['unlock', 'stage'], { vars: { KEEL_AGE_IDENTITY: me.identity } });
    expect(r.code).toBe(1);
    expect(r.out.stderr[0]).toMatch(/encrypted to 1 X25519 recipient\(s\): your age identity opens it in milliseconds, there is nothing to unlock/);
  });

  it('refuses a wrong passphrase or a bad duration (before deriving anything), and diff ignores the kept key', async () => {
    const { keel, keys, vault } = await passphraseProject();
    let r = await keel(['unlock', 'stage'], { vars: { KEEL_VAULT_PASSWORD: 'wrong' } });
    expect(r.code).toBe(1);
    expect(r.out.stderr[0]).toMatch(/the passphrase from \$KEEL_VAULT_PASSWORD is wrong/);
    expect(readdirSync(keys)).toEqual([]);
    const bad = await counted(() => keel(['unlock', 'stage', '--for', '2d']));
    expect(bad.result.code).toBe(1);
    expect(bad.result.out.stderr[0]).toMatch(/--for takes a duration like 15m, 2h, 1h30m or 90s, not '2d'/);
    expect(bad.n).toBe(0);

    const before = (await keel(['diff', vault])).out.stdout;
    await keel(['unlock', 'stage']);
    r = await keel(['diff', vault]);
    expect(r.out.stdout).toEqual(before);
    expect(r.out.stderr).toEqual([]);
    expect((await keel(['lock', '--all'])).out.stdout).toEqual(['forgot 1 unlocked key(s)']);
    expect((await keel(['lock'])).code).toBe(1);
  });

  it.skipIf(!hasBinary('age') || !hasBinary('script'))(
    'a vault written by `age -p` unlocks; after keel saves it, `age -d` still opens it with the passphrase (needs age, script)',
    async () => {
      const { p, keel } = await passphraseProject({ KEEL_VAULT_PASSWORD: 'fixture passphrase' });
      const vault = join(p.root, 'secrets', 'qa.age');
      writeFileSync(vault, readFileSync(join(__dirname, '..', 'fixtures', 'vault', 'age-p.age')));
      expect((await counted(() => keel(['unlock', 'qa']))).n).toBe(1);
      const got = await counted(() => keel(['get', 'qa', 'nested.key'], { vars: {} }));
      expect(got.result.out.stdout).toEqual(['value']);
      expect(got.n).toBe(0);
      expect((await keel(['set', 'qa', 'added'], { readStdin: async () => 'by-keel' })).code).toBe(0);
      const out = join(p.root, '..', 'qa.yaml');
      sh(`printf 'fixture passphrase\\n' | script -qec "age -d -o ${out} ${vault}" /dev/null >/dev/null`);
      expect(readFileSync(out, 'utf8')).toBe('from_age_cli: p-encrypted\nnested:\n  key: value\nadded: by-keel\n');
      expect((await keel(['get', 'qa', 'added'], { vars: {} })).out.stdout).toEqual(['by-keel']);
    },
  );
});
