// How often each `keel secrets` command derives a passphrase key (node:crypto's scrypt is
// counted, so the pure-JS one would show as 0).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

vi.mock('node:crypto', async (original) => {
  const real = await original<typeof import('node:crypto')>();
  return { ...real, scrypt: vi.fn(real.scrypt) };
});
const crypto = await import('node:crypto');
const { makeProject } = await import('../fixtures/vault/harness.js');
const { loadSecrets } = await import('../../src/vault/index.js');
type Project = ReturnType<typeof makeProject>;

const SECRET = 'unlock-test-secret-value';
const PASS = 'a passphrase';
let projects: Project[] = [];
afterEach(() => {
  for (const p of projects) p.cleanup();
  projects = [];
});
const derivations = () => vi.mocked(crypto.scrypt).mock.calls.length;
beforeEach(() => {
  vi.mocked(crypto.scrypt).mockClear(); // (returning the mock would make vitest call it as a teardown)
});

/** A passphrase vault holding SECRET. */
async function passphraseProject(vars: Record<string, string> = { KEEL_VAULT_PASSWORD: PASS }) {
  const p = makeProject(vars);
  projects.push(p);
  const keel = (args: string[], io: Parameters<Project['keel']>[1] = {}) => p.keel(args, io);
  expect((await keel(['init', 'stage'])).code).toBe(0);
  expect((await keel(['set', 'stage', 'db_password'], { readStdin: async () => SECRET })).code).toBe(0);
  return { p, keel, vault: join(p.root, 'secrets', 'stage.age') };
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
    const cases: Array<[string, string[], Parameters<Project['keel']>[1], number]> = [
      ['get', ['get', 'stage', 'db_password'], {}, 1],
      ['view', ['view', 'stage'], {}, 1],
      ['set (same value)', ['set', 'stage', 'db_password'], { readStdin: async () => SECRET }, 1],
      ['set', ['set', 'stage', 'other'], { readStdin: async () => 'x' }, 2],
      ['edit (no change)', ['edit', 'stage'], { vars: { KEEL_VAULT_PASSWORD: PASS, EDITOR: 'true' } }, 1],
      ['edit', ['edit', 'stage'], { vars: { KEEL_VAULT_PASSWORD: PASS, EDITOR: ed } }, 2],
      ['diff', ['diff', join(p.root, 'secrets', 'stage.age')], {}, 1],
      ['rekey', ['rekey', 'stage'], { vars: { KEEL_VAULT_PASSWORD: PASS, KEEL_VAULT_NEW_PASSWORD: PASS } }, 2],
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
      const r = await counted(() => loadSecrets(p.root, 'stage', { interactive: false }));
      expect(r.result).toEqual({ db_password: SECRET });
      expect(r.n).toBe(1);
    } finally {
      if (prev === undefined) delete process.env.KEEL_VAULT_PASSWORD;
      else process.env.KEEL_VAULT_PASSWORD = prev;
    }
  });
});
