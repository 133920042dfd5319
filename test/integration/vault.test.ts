// `keel secrets ...` end to end: round trips, every bad input (exit 1, vault byte-identical,
// no plaintext left, no value in the output), interop with Debian's age and ansible-vault,
// git textconv, and signals during edit.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { hasBinary, makeProject, newIdentity, sh, type Project } from '../fixtures/vault/harness.js';
import { loadSecrets } from '../../src/vault/index.js';
import { setSecret } from '../../src/vault/operations.js';
import { vaultContext } from '../../src/vault/store.js';

const SECRET = 'Tr0ub4dor&3-very-secret';
let projects: Project[] = [];
afterEach(() => {
  for (const p of projects) p.cleanup();
  projects = [];
});

function project(vars: Record<string, string | undefined> = {}): Project {
  const p = makeProject(vars);
  projects.push(p);
  return p;
}

function editorScript(p: Project, name: string, body: string): string {
  const f = join(p.root, '..', name);
  writeFileSync(f, `#!/bin/sh\necho "$1" >> ${join(p.root, '..', 'edited-paths')}\n${body}\n`);
  chmodSync(f, 0o755);
  return f;
}

async function recipientsProject() {
  const me = await newIdentity();
  const p = project({ KEEL_AGE_IDENTITY: me.identity });
  expect((await p.keel(['init', 'prod', '--recipient', me.recipient])).code).toBe(0);
  expect((await p.keel(['set', 'prod', 'db_password'], { readStdin: async () => SECRET + '\n' })).code).toBe(0);
  return { p, me, vault: join(p.root, 'secrets', 'prod.age') };
}

describe('round trips', () => {
  it('recipients: init, set, get, view, edit, diff, rekey, recipients add/rm', async () => {
    const { p, me, vault } = await recipientsProject();
    expect(readFileSync(join(p.root, 'secrets', 'prod.recipients'), 'utf8')).toBe(me.recipient + '\n');

    let r = await p.keel(['get', 'prod', 'db_password']);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out.stdout).toEqual([SECRET]); // trailing newline from stdin dropped

    r = await p.keel(['set', 'prod', 'mail.smtp.password'], { readStdin: async () => 'm41l\r\n' });
    expect(r.code).toBe(0);
    expect((await p.keel(['get', 'prod', 'mail.smtp.password'])).out.stdout).toEqual(['m41l']);
    expect((await p.keel(['get', 'prod', 'mail'])).out.stdout).toEqual(['smtp:\n  password: m41l']);

    r = await p.keel(['view', 'prod']);
    expect(r.out.stdout.join('\n')).toContain(`db_password: ${SECRET}`);

    // edit with a sed "editor"; the value is masked in everything edit prints
    const ed = editorScript(p, 'ed.sh', `sed -i 's/^db_password: .*/db_password: changed-value/' "$1"`);
    r = await p.keel(['edit', 'prod'], { vars: { KEEL_AGE_IDENTITY: me.identity, EDITOR: ed } });
    expect(r.code).toBe(0);
    expect(r.out.stdout).toEqual(['saved secrets/prod.age']);
    expect((await p.keel(['get', 'prod', 'db_password'])).out.stdout).toEqual(['changed-value']);
    expect(p.leftovers()).toEqual([]);
    const edited = readFileSync(join(p.root, '..', 'edited-paths'), 'utf8').trim();
    expect(edited.startsWith(p.temp)).toBe(true);
    expect(existsSync(edited)).toBe(false);

    // no change in the editor: byte-identical file
    const before = readFileSync(vault);
    r = await p.keel(['edit', 'prod'], { vars: { KEEL_AGE_IDENTITY: me.identity, EDITOR: 'true' } });
    expect(r.out.stdout).toEqual(['no changes; secrets/prod.age left as it was']);
    expect(readFileSync(vault).equals(before)).toBe(true);

    r = await p.keel(['diff', vault]);
    expect(r.code).toBe(0);
    expect(r.out.stdout[0]).toMatch(/^# keel secrets/);
    expect(r.out.stdout[0]).toMatch(/\ndb_password: \*{6} #[0-9a-f]{8}\nmail\.smtp\.password: \*{6} #[0-9a-f]{8}$/);
    expect(r.out.all()).not.toContain('changed-value');

    // a second operator: added, can decrypt; removed again, cannot
    const bob = await newIdentity();
    r = await p.keel(['recipients', 'add', 'prod', bob.recipient, '--comment', 'bob laptop']);
    expect(r.code).toBe(0);
    expect(readFileSync(join(p.root, 'secrets', 'prod.recipients'), 'utf8')).toContain(`${bob.recipient}  # bob laptop`);
    const asBob = await p.keel(['get', 'prod', 'db_password'], { vars: { KEEL_AGE_IDENTITY: bob.identity } });
    expect(asBob.out.stdout).toEqual(['changed-value']);
    expect((await p.keel(['recipients', 'rm', 'prod', bob.recipient])).code).toBe(0);
    const bobAgain = await p.keel(['get', 'prod', 'db_password'], { vars: { KEEL_AGE_IDENTITY: bob.identity } });
    expect(bobAgain.code).toBe(1);
    expect(bobAgain.out.stderr.join('\n')).toContain('encrypted to 1 X25519 recipient(s)');
    expect(bobAgain.out.stderr.join('\n')).toContain(me.recipient);

    const last = await p.keel(['recipients', 'rm', 'prod', me.recipient]);
    expect(last.code).toBe(1);
    expect(last.out.stderr.join('\n')).toMatch(/last recipient/);

    // rekey to the recipients file: new bytes, same content
    const pre = readFileSync(vault);
    expect((await p.keel(['rekey', 'prod'])).code).toBe(0);
    expect(readFileSync(vault).equals(pre)).toBe(false);
    expect((await p.keel(['get', 'prod', 'db_password'])).out.stdout).toEqual(['changed-value']);
  });

  it('passphrase: init from a password file, set, rekey to a new passphrase, loadSecrets', async () => {
    const p = project({});
    writeFileSync(join(p.root, 'secrets', 'stage.password'), 'first pass\n', { mode: 0o600 });
    expect((await p.keel(['init', 'stage'])).out.stdout).toEqual(['created secrets/stage.age, encrypted to a passphrase (scrypt)']);
    const again = await p.keel(['init', 'stage']);
    expect(again.code).toBe(1);
    expect(again.out.stderr.join('\n')).toMatch(/already exists/);
    await p.keel(['set', 'stage', 'django_secret_key'], { readStdin: async () => SECRET });
    const r = await p.keel(['rekey', 'stage'], { vars: { KEEL_VAULT_NEW_PASSWORD: 'second pass' } });
    expect(r.code).toBe(0);
    expect(readFileSync(join(p.root, 'secrets', 'stage.password'), 'utf8')).toBe('second pass\n');
    const withEnv = await p.keel(['get', 'stage', 'django_secret_key'], { vars: { KEEL_VAULT_PASSWORD: 'second pass' } });
    expect(withEnv.out.stdout).toEqual([SECRET]);

    const prev = process.env.KEEL_VAULT_PASSWORD;
    process.env.KEEL_VAULT_PASSWORD = 'second pass';
    try {
      expect(await loadSecrets(p.root, 'stage', { interactive: false })).toEqual({ django_secret_key: SECRET });
      expect(await loadSecrets(p.root, 'nowhere', { interactive: false })).toBeNull();
    } finally {
      if (prev === undefined) delete process.env.KEEL_VAULT_PASSWORD;
      else process.env.KEEL_VAULT_PASSWORD = prev;
    }
  });

  it('asks for a passphrase on a terminal, twice when creating', async () => {
    const p = project({});
    const answers = ['pw1', 'pw1'];
    const asked: string[] = [];
    const prompt = async (q: string) => {
      asked.push(q);
      return answers.shift()!;
    };
    expect((await p.keel(['init', 'dev'], { interactive: true, prompt })).code).toBe(0);
    expect(asked).toEqual(['New passphrase for secrets/dev.age: ', 'Repeat it: ']);
    const r = await p.keel(['view', 'dev'], { interactive: true, prompt: async () => 'pw1' });
    expect(r.code).toBe(0);
  });

  it('edit: invalid YAML reopens the editor when interactive, until fixed', async () => {
    const { p, me } = await recipientsProject();
    const counter = join(p.root, '..', 'count');
    // 1st run: break the YAML; 2nd run: fix it.
    const ed = editorScript(
      p,
      'ed2.sh',
      `if [ -e ${counter} ]; then sed -i 's/^broken: .*/fixed: ok/' "$1"; else touch ${counter}; echo 'broken: [x' >> "$1"; fi`,
    );
    const asked: string[] = [];
    const r = await p.keel(['edit', 'prod'], {
      interactive: true,
      vars: { KEEL_AGE_IDENTITY: me.identity, EDITOR: ed },
      prompt: async (q) => {
        asked.push(q);
        return 'y';
      },
    });
    expect(r.code).toBe(0);
    expect(asked).toEqual(['Reopen the editor to fix it? [Y/n] ']);
    expect(r.out.stderr.join('\n')).toMatch(/secrets\/prod\.age \(plaintext\):\d+:\d+: invalid YAML/);
    expect((await p.keel(['get', 'prod', 'fixed'])).out.stdout).toEqual(['ok']);
    expect(p.leftovers()).toEqual([]);
  });
});

describe('bad input: exit 1, a clear message, the vault byte-identical, no plaintext anywhere', () => {
  async function expectRefused(p: Project, vault: string, args: string[], message: RegExp, io: Parameters<Project['keel']>[1] = {}) {
    const before = readFileSync(vault);
    const r = await p.keel(args, io);
    expect(r.code).toBe(1);
    expect(r.out.stderr.join('\n')).toMatch(message);
    expect(r.out.all()).not.toContain(SECRET);
    expect(readFileSync(vault).equals(before)).toBe(true);
    expect(p.leftovers()).toEqual([]);
    expect(readdirSync(join(p.root, 'secrets')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    return r;
  }

  it('wrong key: says how many X25519 recipients and lists the recipients file', async () => {
    const { p, me, vault } = await recipientsProject();
    const other = await newIdentity();
    const r = await expectRefused(p, vault, ['view', 'prod'], /encrypted to 1 X25519 recipient\(s\), and none of your identities/, {
      vars: { KEEL_AGE_IDENTITY: other.identity },
    });
    expect(r.out.stderr.join('\n')).toContain(me.recipient);
    expect(r.out.stderr.join('\n')).toContain('keel secrets recipients add prod');
    await expectRefused(p, vault, ['view', 'prod'], /no age identity was found/, { vars: {} });
  });

  it('wrong passphrase: says it is a passphrase (scrypt) file', async () => {
    const p = project({ KEEL_VAULT_PASSWORD: 'right' });
    await p.keel(['init', 'stage']);
    await p.keel(['set', 'stage', 'k'], { readStdin: async () => SECRET });
    const vault = join(p.root, 'secrets', 'stage.age');
    await expectRefused(p, vault, ['get', 'stage', 'k'], /encrypted with a passphrase \(scrypt\), and the passphrase from \$KEEL_VAULT_PASSWORD is wrong/, {
      vars: { KEEL_VAULT_PASSWORD: 'wrong' },
    });
    await expectRefused(p, vault, ['get', 'stage', 'k'], /no passphrase was given/, { vars: {} });
  });

  it('tampered, truncated, and not-a-vault files', async () => {
    const { p, vault } = await recipientsProject();
    const good = readFileSync(vault);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 5] = flipped[flipped.length - 5]! ^ 1;
    writeFileSync(vault, flipped);
    await expectRefused(p, vault, ['view', 'prod'], /has been tampered with/);
    writeFileSync(vault, good.subarray(0, good.length - 20));
    await expectRefused(p, vault, ['view', 'prod'], /truncated or has been tampered with/);
    writeFileSync(vault, good.subarray(0, 60));
    await expectRefused(p, vault, ['view', 'prod'], /truncated or corrupted/);
    const headerMac = Buffer.from(good);
    const macAt = headerMac.indexOf('\n--- ') + 6;
    headerMac[macAt] = headerMac[macAt] === 0x41 ? 0x42 : 0x41;
    writeFileSync(vault, headerMac);
    await expectRefused(p, vault, ['view', 'prod'], /tampered with or corrupted \(the header MAC/);
    writeFileSync(vault, `db_password: ${SECRET}\n`);
    const r = await p.keel(['view', 'prod']);
    expect(r.code).toBe(1);
    expect(r.out.stderr.join('\n')).toMatch(/not a keel vault/);
    expect(r.out.all()).not.toContain(SECRET);
  });

  it('the editor exits non-zero, or saves invalid YAML (non-interactive), or is killed', async () => {
    const { p, me, vault } = await recipientsProject();
    const vars = (EDITOR: string) => ({ vars: { KEEL_AGE_IDENTITY: me.identity, EDITOR } });
    await expectRefused(p, vault, ['edit', 'prod'], /the editor \(false\) exited with 1; secrets\/prod\.age is unchanged/, vars('false'));
    const bad = editorScript(p, 'bad.sh', `echo "oops: [${SECRET}" >> "$1"`);
    const r = await expectRefused(p, vault, ['edit', 'prod'], /\(plaintext\):\d+:\d+: invalid YAML: .*your edit was discarded/, vars(bad));
    expect(r.out.all()).not.toContain('oops');
    const killed = editorScript(p, 'killed.sh', 'kill -KILL $$');
    await expectRefused(p, vault, ['edit', 'prod'], /was killed by SIGKILL/, vars(killed));
    // interactive, and the person declines to reopen: abandoned
    const bad2 = editorScript(p, 'bad2.sh', `echo "- not a mapping" > "$1"`);
    await expectRefused(p, vault, ['edit', 'prod'], /must be a YAML mapping.*discarded/, {
      ...vars(bad2),
      interactive: true,
      prompt: async () => 'n',
    });
    for (const f of readFileSync(join(p.root, '..', 'edited-paths'), 'utf8')
      .trim()
      .split('\n'))
      expect(existsSync(f)).toBe(false);
  });

  it('set: bad key names are refused before anything is read', async () => {
    const { p, vault } = await recipientsProject();
    for (const key of ['db-password', '1st', 'a..b', 'a.b-c']) {
      await expectRefused(p, vault, ['set', 'prod', key], /invalid key/, {
        readStdin: async () => {
          throw new Error('must not read stdin');
        },
      });
    }
    await expectRefused(p, vault, ['set', 'prod', 'db_password.inner'], /db_password is not a mapping/, { readStdin: async () => 'x' });
  });

  it('disk full (mocked: writeSync fails with ENOSPC) during set: old vault survives', async () => {
    const { p, me, vault } = await recipientsProject();
    const fs = await import('node:fs');
    const full = {
      ...fs,
      writeSync: (() => {
        throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
      }) as typeof fs.writeSync,
    };
    await expectRefused(p, vault, ['set', 'prod', 'new_key'], /no space left on device \(ENOSPC\); the previous file is unchanged/, {
      fs: full,
      readStdin: async () => 'value',
    });
    // and the same through the API
    const vc = vaultContext(p.root, 'prod', { interactive: false, vars: { KEEL_AGE_IDENTITY: me.identity }, home: p.home, fs: full });
    await expect(setSecret(vc, 'other', 'v')).rejects.toThrow(/ENOSPC/);
  });

  it('import-ansible refuses to overwrite without --force, and a wrong password', async () => {
    const { p, vault } = await recipientsProject();
    const av = join(p.root, '..', 'vault.yml');
    writeFileSync(av, '$ANSIBLE_VAULT;1.1;AES256\n3030\n');
    await expectRefused(p, vault, ['import-ansible', 'prod', av, '--ansible-password-file', av], /already exists.*|--force/);
    await expectRefused(p, vault, ['import-ansible', 'prod', av], /no Ansible Vault password/);
  });
});

describe('interop with Debian tools', () => {
  const haveAge = hasBinary('age') && hasBinary('age-keygen');
  const haveScript = hasBinary('script');

  it.skipIf(!haveAge)('age -d -i decrypts a keel vault encrypted to recipients (needs Debian package age)', async () => {
    const { p } = await recipientsProject();
    const idFile = join(p.root, '..', 'cli-id.txt');
    sh(`age-keygen -o ${idFile} 2>/dev/null`);
    const pub = sh(`age-keygen -y ${idFile}`).trim();
    await p.keel(['recipients', 'add', 'prod', pub]);
    const plain = sh(`age -d -i ${idFile} ${join(p.root, 'secrets', 'prod.age')}`);
    expect(plain).toContain(`db_password: ${SECRET}`);
    // and the other way: age encrypts to keel's identity, keel reads it
    writeFileSync(join(p.root, 'secrets', 'ci.key'), readFileSync(idFile));
    sh(`printf 'token: from-age-cli\\n' | age -r ${pub} -o ${join(p.root, 'secrets', 'ci.age')}`);
    expect((await p.keel(['get', 'ci', 'token'], { vars: {} })).out.stdout).toEqual(['from-age-cli']);
  });

  // age reads passphrases from /dev/tty only; script(1) (bsdutils) gives it a pseudo-terminal.
  it.skipIf(!haveAge || !haveScript)('passphrase files both ways: age -d and age -p through a pty (needs age, script)', async () => {
    const p = project({ KEEL_VAULT_PASSWORD: 'pass phrase' });
    await p.keel(['init', 'stage']);
    await p.keel(['set', 'stage', 'k'], { readStdin: async () => SECRET });
    const out = join(p.root, '..', 'out.yaml');
    sh(`printf 'pass phrase\\n' | script -qec "age -d -o ${out} ${join(p.root, 'secrets', 'stage.age')}" /dev/null >/dev/null`);
    expect(readFileSync(out, 'utf8')).toContain(`k: ${SECRET}`);
    const input = join(p.root, '..', 'in.yaml');
    writeFileSync(input, 'from_age: p-encrypted\n');
    sh(
      "(sleep 1; printf 'pass phrase\\n'; sleep 1; printf 'pass phrase\\n') | " +
        `script -qec "age -p -o ${join(p.root, 'secrets', 'qa.age')} ${input}" /dev/null >/dev/null`,
    );
    expect((await p.keel(['get', 'qa', 'from_age'])).out.stdout).toEqual(['p-encrypted']);

    // and at age's (and keel's) default work factor, logN 18, through the native scrypt
    writeFileSync(join(p.root, 'secrets', 'default.password'), 'default pass\n');
    expect((await p.keel(['init', 'default'], { logN: undefined, vars: {} })).code).toBe(0);
    expect((await p.keel(['set', 'default', 'k'], { logN: undefined, readStdin: async () => SECRET, vars: {} })).code).toBe(0);
    expect(readFileSync(join(p.root, 'secrets', 'default.age'), 'latin1')).toMatch(/^age-encryption\.org\/v1\n-> scrypt \S{22} 18\n/);
    sh(`printf 'default pass\\n' | script -qec "age -d -o ${out} ${join(p.root, 'secrets', 'default.age')}" /dev/null >/dev/null`);
    expect(readFileSync(out, 'utf8')).toContain(`k: ${SECRET}`);
  });

  const haveAnsible = hasBinary('ansible-vault');
  it.skipIf(!haveAnsible)('imports ansible-vault 1.1 and 1.2 (--vault-id label@file) files (needs ansible-core)', async () => {
    const me = await newIdentity();
    const p = project({ KEEL_AGE_IDENTITY: me.identity });
    writeFileSync(join(p.root, 'secrets', 'prod.recipients'), me.recipient + '\n');
    writeFileSync(join(p.root, 'secrets', 'stage.recipients'), me.recipient + '\n');
    const dir = join(p.root, '..');
    writeFileSync(join(dir, 'pw'), 'ansible pw\n');
    writeFileSync(join(dir, 'v11.yml'), `db_password: ${SECRET}\nsentry_dsn: https://x@sentry\n`);
    writeFileSync(join(dir, 'v12.yml'), 'mail_password: m\n');
    const env = { ...process.env, ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp'), HOME: p.home };
    sh(`ansible-vault encrypt --vault-password-file pw v11.yml`, { cwd: dir, env });
    sh(`ansible-vault encrypt --vault-id prodlabel@pw v12.yml`, { cwd: dir, env });
    expect(readFileSync(join(dir, 'v11.yml'), 'utf8')).toMatch(/^\$ANSIBLE_VAULT;1\.1;AES256\n/);
    expect(readFileSync(join(dir, 'v12.yml'), 'utf8')).toMatch(/^\$ANSIBLE_VAULT;1\.2;AES256;prodlabel\n/);

    let r = await p.keel(['import-ansible', 'prod', join(dir, 'v11.yml'), '--ansible-password-file', join(dir, 'pw')]);
    expect(r.code).toBe(0);
    expect(r.out.all()).not.toContain(SECRET);
    expect((await p.keel(['get', 'prod', 'db_password'])).out.stdout).toEqual([SECRET]);
    r = await p.keel(['import-ansible', 'stage', join(dir, 'v12.yml'), '--ansible-password-file', join(dir, 'pw')]);
    expect(r.code).toBe(0);
    expect((await p.keel(['get', 'stage', 'mail_password'])).out.stdout).toEqual(['m']);

    const vault = join(p.root, 'secrets', 'prod.age');
    const before = readFileSync(vault);
    r = await p.keel(['import-ansible', 'prod', join(dir, 'v12.yml'), '--ansible-password-file', join(dir, 'pw')]);
    expect(r.code).toBe(1);
    expect(readFileSync(vault).equals(before)).toBe(true);
    writeFileSync(join(dir, 'wrong'), 'nope\n');
    r = await p.keel(['import-ansible', 'prod', join(dir, 'v12.yml'), '--force', '--ansible-password-file', join(dir, 'wrong')]);
    expect(r.code).toBe(1);
    expect(r.out.stderr.join('\n')).toMatch(/wrong Ansible Vault password/);
    r = await p.keel(['import-ansible', 'prod', join(dir, 'v12.yml'), '--force', '--ansible-password-file', join(dir, 'pw')]);
    expect(r.code).toBe(0);
    expect((await p.keel(['get', 'prod', 'mail_password'])).out.stdout).toEqual(['m']);
  });
});

// A real process: keel as a bundled script, so git can run it and signals are real.
describe('as a process', () => {
  let cli = '';
  beforeAll(async () => {
    const { build } = await import('esbuild');
    cli = join(mkdtempSync(join(tmpdir(), 'keel-cli-')), 'keel-secrets.mjs');
    await build({
      entryPoints: [join(__dirname, '..', 'fixtures', 'vault', 'cli.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: cli,
      logLevel: 'error',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
  });
  afterAll(() => rmSync(dirname(cli), { recursive: true, force: true }));

  it('set reads the value from real stdin', async () => {
    const { p, me } = await recipientsProject();
    const env = { ...process.env, KEEL_ROOT: p.root, KEEL_AGE_IDENTITY: me.identity, HOME: p.home, GIT_CONFIG_NOSYSTEM: '1' };
    sh(`printf '%s\\n' 'piped-secret' | node ${cli} secrets set prod sentry_dsn`, { env });
    expect(sh(`node ${cli} secrets get prod sentry_dsn`, { env })).toBe('piped-secret\n');
  });

  it.skipIf(!hasBinary('git'))(`git diff via textconv shows keys with masked values${hasBinary('git') ? '' : ' (skipped: git is not installed)'}`, async () => {
    const { p, me } = await recipientsProject();
    const env = { ...process.env, KEEL_ROOT: p.root, KEEL_AGE_IDENTITY: me.identity, HOME: p.home, GIT_CONFIG_NOSYSTEM: '1' };
    sh(`printf '%s\\n' 'piped-secret' | node ${cli} secrets set prod sentry_dsn`, { env });
    const git = (c: string) => sh(`git -c user.email=t@t -c user.name=t ${c}`, { cwd: p.root, env });
    git('init -q');
    git(`config diff.keelvault.textconv "node ${cli} secrets diff"`);
    writeFileSync(join(p.root, '.gitattributes'), 'secrets/*.age diff=keelvault\n');
    git('add -A');
    git('commit -qm one');
    sh(`printf 'new-secret' | node ${cli} secrets set prod db_password`, { env });
    const diff = git('diff');
    expect(diff).toMatch(/^-db_password: \*{6} #[0-9a-f]{8}$/m);
    expect(diff).toMatch(/^\+db_password: \*{6} #[0-9a-f]{8}$/m);
    expect(diff).toMatch(/^ sentry_dsn: \*{6} #[0-9a-f]{8}$/m);
    expect(diff).not.toContain(SECRET);
    expect(diff).not.toContain('new-secret');
  });

  function spawnEdit(p: Project, env: NodeJS.ProcessEnv) {
    const child = spawn('node', [cli, 'secrets', 'edit', 'prod'], {
      env: { ...process.env, ...env, KEEL_ROOT: p.root, HOME: p.home, KEEL_TEST_TEMP_BASE: p.temp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) =>
      child.on('exit', (code, signal) => res({ code, signal, stderr })),
    );
    return { child, exited };
  }

  async function waitFor(file: string) {
    for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(file)).toBe(true);
  }

  it('SIGTERM while the editor is open: plaintext wiped, vault unchanged', async () => {
    const { p, me, vault } = await recipientsProject();
    const ready = join(p.root, '..', 'ready');
    const ed = editorScript(p, 'slow.sh', `sed -i 's/^db_password: .*/db_password: never-saved/' "$1"; touch ${ready}; sleep 30`);
    const before = readFileSync(vault);
    const { child, exited } = spawnEdit(p, { KEEL_AGE_IDENTITY: me.identity, EDITOR: ed });
    await waitFor(ready);
    const path = readFileSync(join(p.root, '..', 'edited-paths'), 'utf8').trim();
    expect(existsSync(path)).toBe(true);
    child.kill('SIGTERM');
    const r = await exited;
    expect(r.signal).toBe('SIGTERM');
    expect(existsSync(path)).toBe(false);
    expect(p.leftovers()).toEqual([]);
    expect(readFileSync(vault).equals(before)).toBe(true);
  });

  it('SIGKILL while the editor is open: the next `keel secrets` command removes the plaintext and says so', async () => {
    const { p, me, vault } = await recipientsProject();
    const ready = join(p.root, '..', 'ready');
    const editorPid = join(p.root, '..', 'editor-pid');
    const ed = editorScript(p, 'stuck.sh', `echo $$ > ${editorPid}; touch ${ready}; exec sleep 60`);
    const before = readFileSync(vault);
    const { child, exited } = spawnEdit(p, { KEEL_AGE_IDENTITY: me.identity, EDITOR: ed });
    try {
      await waitFor(ready);
      const plaintext = readFileSync(join(p.root, '..', 'edited-paths'), 'utf8').trim();
      child.kill('SIGKILL');
      expect((await exited).signal).toBe('SIGKILL');
      expect(readFileSync(plaintext, 'utf8')).toContain(`db_password: ${SECRET}`); // nothing could wipe it

      const env = { ...process.env, KEEL_ROOT: p.root, HOME: p.home, KEEL_AGE_IDENTITY: me.identity, KEEL_TEST_TEMP_BASE: p.temp };
      const next = spawnSync('node', [cli, 'secrets', 'status', 'prod'], { env, encoding: 'utf8' });
      expect(next.status).toBe(0);
      expect(next.stderr).toBe(`removed leftover plaintext of a killed \`keel secrets edit\` (pid ${child.pid}): ${dirname(plaintext)}\n`);
      expect(existsSync(dirname(plaintext))).toBe(false);
      expect(p.leftovers()).toEqual([]);
      expect(readFileSync(vault).equals(before)).toBe(true);
      // said once: the run after that finds nothing to remove
      expect(spawnSync('node', [cli, 'secrets', 'status', 'prod'], { env, encoding: 'utf8' }).stderr).toBe('');
    } finally {
      if (existsSync(editorPid)) process.kill(Number(readFileSync(editorPid, 'utf8')), 'SIGKILL');
    }
  });

  it('unlock in one process, read in the next: the key lives under $XDG_RUNTIME_DIR/keel and every use is announced', async () => {
    const p = project({ KEEL_VAULT_PASSWORD: 'pw' });
    await p.keel(['init', 'stage']);
    await p.keel(['set', 'stage', 'k'], { readStdin: async () => SECRET });
    const runtime = mkdtempSync('/dev/shm/keel-itest-');
    try {
      const env = { ...process.env, KEEL_ROOT: p.root, HOME: p.home, XDG_RUNTIME_DIR: runtime };
      const unlocked = sh(`node ${cli} secrets unlock stage --for 5m`, { env: { ...env, KEEL_VAULT_PASSWORD: 'pw' } });
      expect(unlocked).toMatch(/^unlocked secrets\/stage\.age until (?:\d{4}-\d\d-\d\d )?\d\d:\d\d \(5 min\)/);
      expect(readdirSync(join(runtime, 'keel'))).toHaveLength(1);
      const get = spawnSync('node', [cli, 'secrets', 'get', 'stage', 'k'], { env, encoding: 'utf8' });
      expect(get.stdout).toBe(`${SECRET}\n`);
      expect(get.stderr).toMatch(/^vault stage: using the unlocked key \(until (?:\d{4}-\d\d-\d\d )?\d\d:\d\d, `keel secrets lock stage` to forget it\)\n$/);
      expect(sh(`node ${cli} secrets lock stage`, { env })).toBe('locked secrets/stage.age: the unlocked key is forgotten\n');
      expect(readdirSync(join(runtime, 'keel'))).toEqual([]);
    } finally {
      rmSync(runtime, { recursive: true, force: true });
    }
  });

  it('SIGINT while the editor is open is left to the editor (as git does); the edit then completes', async () => {
    const { p, me } = await recipientsProject();
    const ready = join(p.root, '..', 'ready');
    const go = join(p.root, '..', 'go');
    const ed = editorScript(
      p,
      'int.sh',
      `touch ${ready}; while [ ! -e ${go} ]; do sleep 0.1; done; sed -i 's/^db_password: .*/db_password: after-ctrl-c/' "$1"`,
    );
    const { child, exited } = spawnEdit(p, { KEEL_AGE_IDENTITY: me.identity, EDITOR: ed });
    await waitFor(ready);
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(go, '');
    const r = await exited;
    expect(r).toMatchObject({ code: 0 });
    expect(p.leftovers()).toEqual([]);
    expect((await p.keel(['get', 'prod', 'db_password'], { vars: { KEEL_AGE_IDENTITY: me.identity } })).out.stdout).toEqual(['after-ctrl-c']);
  });
});
