// The examples of examples/seed-*/, each as a user runs it (examples/README.md): the project
// copied to a temp dir, the sample app's repository made in it, its vault created, its local
// targets started by keel's own `targetUp` (what `keel target up` runs) on the WARM image
// (scripts/build-warm-image.sh: the stack's Debian packages preinstalled, so the time goes to
// what is tested here, not to apt), then: provision twice (the second run changes nothing),
// `keel deploy <env> --branch main`, and the behaviour the seed describes. One project per
// example, one after the other (their targets would fight over names, ports 80/443 and the two
// cores); each example's time is printed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { vaultContext } from '../../src/vault/store.js';
import { initVault, setSecret } from '../../src/vault/operations.js';
import { containerName } from '../../src/target/docker.js';
import { docker } from '../../src/target/docker-cli.js';
import {
  changed, codeOn, copyExample, deploy, finish, httpGet, keel, onTarget, privateAddress, probe, provision, provisionTwice, recordedPorts, repoRoot, setLine, until, upTargets,
  type Example,
} from '../helpers/examples.js';

const fileStarted = Date.now();
afterAll(() => console.log(`examples: ${((Date.now() - fileStarted) / 1000).toFixed(1)} s for the whole file`));

const VAULT_PASSWORD = 'examples-vault-passphrase';
const saved = { pw: process.env.KEEL_VAULT_PASSWORD, id: process.env.KEEL_AGE_IDENTITY };
afterAll(() => {
  for (const [k, v] of [['KEEL_VAULT_PASSWORD', saved.pw], ['KEEL_AGE_IDENTITY', saved.id]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** A passphrase vault for the example's environment (logN 10: fast, for tests only), as
 *  `keel secrets init <env>` then `keel secrets set <env> KEY` per secret would make it. */
async function passphraseVault(ex: Example, secrets: Record<string, string>): Promise<void> {
  process.env.KEEL_VAULT_PASSWORD = VAULT_PASSWORD;
  const vc = vaultContext(ex.root, ex.env, { interactive: false, vars: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, logN: 10 });
  await initVault(vc, []);
  for (const [k, v] of Object.entries(secrets)) await setSecret(vc, k, v);
}

const hasAnsibleVault = (() => {
  try {
    execFileSync('ansible-vault', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('seed 001 (catalogage): its Ansible INI inventory through ansible_inventory:, nginx -> uvicorn on tcp/3579 under supervisor -> PostgreSQL', () => {
  let ex: Example;
  const DB_PASSWORD = 'Catalogage-s3cret';

  beforeAll(async () => {
    ex = copyExample('seed-001-catalogage', 'test');
    await upTargets(ex, ['web1-test']);
    // The INI's host line, pointed at the target instead of the Vagrant machine: its recorded
    // SSH port and the key `keel target up` made, the rest of the line as the team wrote it.
    const ports = await recordedPorts(ex, 'web1-test');
    const ini = join(ex.root, 'ops', 'ansible', 'hosts_test');
    const before = readFileSync(ini, 'utf8');
    const after = before.replace(/^(web1-test .*)$/m, (line) =>
      line.replace(/ansible_port=\S+/, `ansible_port=${ports.ssh}`).replace(/ansible_ssh_private_key_file=\S+/, `ansible_ssh_private_key_file=${join(ex.root, '.keel', 'target', 'id_ed25519')}`));
    expect(after).toMatch(new RegExp(`^web1-test ansible_host=127\\.0\\.0\\.1 ansible_port=${ports.ssh} ansible_user=root ansible_ssh_private_key_file=\\S+ env_branch=master$`, 'm'));
    writeFileSync(ini, after);
    // known_hosts named by inventories/test.yaml: the target's key (a user would pass
    // --accept-new-host-keys once).
    writeFileSync(join(ex.root, '.keel', 'known_hosts'), readFileSync(join(ex.root, '.keel', 'target', 'known_hosts'), 'utf8'));

    // The vault: the seed's Ansible Vault file brought over with `keel secrets import-ansible`,
    // encrypted to an age identity (CI has ansible-vault; without it, keel secrets set).
    const secrets = {
      db_password: DB_PASSWORD,
      database_url: `postgresql://catalogage:${DB_PASSWORD}@localhost:5432/catalogage`,
      secret_key: 'django-insecure-example-001',
    };
    if (hasAnsibleVault) {
      const identity = await generateIdentity();
      process.env.KEEL_AGE_IDENTITY = identity;
      mkdirSync(join(ex.root, 'secrets'));
      writeFileSync(join(ex.root, 'secrets', 'test.recipients'), `${await identityToRecipient(identity)}\n`);
      const dir = join(ex.root, 'ops', 'ansible', 'secrets');
      mkdirSync(dir);
      writeFileSync(join(dir, 'staging.vault-password'), 'ansible-vault-password\n');
      writeFileSync(join(dir, 'plain.yaml'), Object.entries(secrets).map(([k, v]) => `${k}: "${v}"\n`).join(''));
      execFileSync('ansible-vault', ['encrypt', '--vault-password-file', join(dir, 'staging.vault-password'), '--output', join(dir, 'staging.enc'), join(dir, 'plain.yaml')], { stdio: 'ignore' });
      rmSync(join(dir, 'plain.yaml'));
      // (Paths from this process's directory, as a shell's from yours: absolute here.)
      const r = await keel(ex, 'secrets', 'import-ansible', 'test', join(dir, 'staging.enc'), '--ansible-password-file', join(dir, 'staging.vault-password'));
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/imported \S+\/ops\/ansible\/secrets\/staging\.enc into secrets\/test\.age \(3 keys\), encrypted to 1 recipient/);
    } else {
      console.log('seed-001: ansible-vault is not installed: the vault is made with keel secrets set instead of import-ansible');
      await passphraseVault(ex, secrets);
    }
    await provisionTwice(ex);
  }, 900_000);
  afterAll(() => finish(ex));

  it('keel deploy test --branch main: the page answers through nginx, uvicorn listens on 3579 under supervisor', async () => {
    const d = await deploy(ex, 'main');
    expect(d.code, d.out).toBe(0);
    expect(d.j.status).toBe('deployed');
    const ports = await recordedPorts(ex, 'web1-test');
    const page = await httpGet(ports.http, '/');
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/^version: v1$/m);
    expect(page.body).toMatch(new RegExp(`^revision: ${d.j.sha}$`, 'm'));
    // Each request adds a row in PostgreSQL and the page shows the total.
    const count = (body: string) => Number(/^count: (\d+)$/m.exec(body)?.[1]);
    expect(count((await httpGet(ports.http, '/')).body)).toBe(count(page.body) + 1);
    expect(await onTarget(ex, 'web1-test', `runuser -u postgres -- psql -tAc 'select count(*) from counter_hit' catalogage`)).toBe(`${count(page.body) + 1}\n`);
    expect((await httpGet(ports.http, '/ping')).body).toBe('pong');
    expect(await onTarget(ex, 'web1-test', "ss -Hltn 'sport = :3579'")).toMatch(/127\.0\.0\.1:3579\b/);
    // The process supervisor runs as `server` is uvicorn on that port, from the release's venv.
    expect(await onTarget(ex, 'web1-test', 'tr "\\0" " " < /proc/$(supervisorctl pid server)/cmdline'))
      .toMatch(/^\/home\/catalogage\/webapp\/current\/\.venv\/bin\/python -m uvicorn --host 127\.0\.0\.1 --port 3579 .*sample\.asgi:application/);
    expect(await onTarget(ex, 'web1-test', 'curl -s http://127.0.0.1:3579/ping')).toBe('pong');
    expect(await onTarget(ex, 'web1-test', 'supervisorctl status server')).toMatch(/^server\s+RUNNING/);
    expect(await onTarget(ex, 'web1-test', 'readlink /home/catalogage/webapp/current')).toBe(`releases/${d.j.release}\n`);
  });
});
