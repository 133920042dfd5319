// The secrets commands through src/cli/main.ts. commands.ts is mocked to register only
// registerSecretsCommands, standing in for the lead's wiring (so this passes before and after).
import { describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeProject, newIdentity } from '../fixtures/vault/harness.js';

vi.mock('../../src/cli/commands.js', async () => {
  const { registerSecretsCommands } = await import('../../src/cli/commands/secrets.js');
  return { registerCommands: registerSecretsCommands };
});
const { main } = await import('../../src/cli/main.js');

async function keel(args: string[], env: Record<string, string>) {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const code = await main(['node', 'keel', ...args]);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('keel secrets via main()', () => {
  const p = makeProject();

  it('init, view, get, diff, and a wrong key (exit 1, file unchanged)', async () => {
    const me = await newIdentity();
    const env = { KEEL_ROOT: p.root, KEEL_AGE_IDENTITY: me.identity, HOME: p.home };
    expect((await keel(['secrets', 'init', 'prod', '--recipient', me.recipient], env)).code).toBe(0);
    const vault = join(p.root, 'secrets', 'prod.age');
    let r = await keel(['secrets', 'view', 'prod'], env);
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout).toContain('# keel secrets for prod');
    r = await keel(['secrets', 'get', 'prod', 'nope'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: secrets/prod.age has no key 'nope'");
    r = await keel(['secrets', 'diff', vault], env);
    expect(r.stdout).toBe('# keel secrets: values masked, #tag changes when a value does\n');
    const before = readFileSync(vault);
    const other = await newIdentity();
    r = await keel(['secrets', 'view', 'prod'], { ...env, KEEL_AGE_IDENTITY: other.identity });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/encrypted to 1 X25519 recipient\(s\)/);
    expect(readFileSync(vault).equals(before)).toBe(true);
    r = await keel(['secrets', '--help'], env);
    expect(r.code).toBe(0);
    p.cleanup();
  });
});
