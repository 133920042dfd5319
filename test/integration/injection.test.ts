// Roles cannot inject, on a real target: values a CI job or a careless inventory could carry
// (`$(...)`, backticks, quotes, a backslash, a newline) go through the built-in roles' free
// string variables that reach a shell on the host: the app's environment (sourced by
// run-app, by the daemon's and the timer's scripts and by keel deploy's steps), the deploy's
// health path and pip index. Provision twice, deploy, run the daemon and the timer: no file
// the payloads would create exists, and each value arrives in the process as written.
// (Bare `{{var}}` in shell fields is refused at compile time: test/unit/shell-fields.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';
import { vaultContext } from '../../src/vault/store.js';
import { initVault, setSecret } from '../../src/vault/operations.js';

const repoRoot = resolve(import.meta.dirname, '..', '..');
const ROOT = '/home/sample/webapp';
const VAULT_PASSWORD = 'injection-vault-passphrase';

/** Each payload, if a shell ever evaluated it, creates /tmp/pwned-<n>. */
const NASTY: Record<string, string> = {
  N1: '$(touch /tmp/pwned-1)',
  N2: '`touch /tmp/pwned-2`',
  N3: `it's "q" \\ $(touch /tmp/pwned-3) '$(touch /tmp/pwned-3b)'`,
  N4: 'a\nb; touch /tmp/pwned-4',
  N5: "'; touch /tmp/pwned-5; echo '",
};

let t: TestTarget;
let dir: string;
const saved = process.env.KEEL_VAULT_PASSWORD;
const sh = async (cmd: string) => (await t.exec(['sh', '-c', cmd])).stdout;

beforeAll(async () => {
  t = await startTarget({ name: 'inject1', warm: true });
  dir = mkdtempSync(join(tmpdir(), 'keel-inject-'));
  execFileSync('sh', [join(repoRoot, 'examples', 'sample-app', 'make-repo.sh'), join(dir, 'app-repo')]);
  mkdirSync(join(dir, 'inventories'));
  writeFileSync(join(dir, 'known_hosts'), readFileSync(t.knownHostsFile, 'utf8'));
  const env = { ...NASTY, SECRET_KEY: '{{secrets.secret_key}}', ALLOWED_HOSTS: '*' };
  // The daemon and the timer write what they got in N1..N5 (python, from the environment).
  // The daemon's python then sleeps: it is the service's one process (run.sh execs the command),
  // so a command that exits is a crash loop, whatever follows it on the line.
  const dump = (file: string, then = '') =>
    `python -c 'import os, json, time; open("${file}", "w").write(json.dumps({k: os.environ[k] for k in ${JSON.stringify(Object.keys(NASTY))}}))${then}'`;
  writeFileSync(
    join(dir, 'inventories', 'itest.yaml'),
    `known_hosts: ../known_hosts
vars:
  app_user: sample
  app_name: sample
  app_module: sample.wsgi:application
  app_system_packages: [python3-django, python3-psycopg2]
  database_url: "postgresql://sample:{{secrets.db_password}}@localhost:5432/sample"
  app_env: ${JSON.stringify(env)}
  app_pip_index_url: ${JSON.stringify('http://127.0.0.1:9/$(touch /tmp/pwned-pip)')}
  deploy_repo: app-repo
  deploy_health_path: ${JSON.stringify('/ping?x=$(touch${IFS}/tmp/pwned-health)`touch${IFS}/tmp/pwned-health2`')}
  postgres_database: sample
  postgres_user: sample
hosts:
  inject1:
    address: 127.0.0.1
    port: ${t.port}
    user: root
    key: ${t.keyFile}
    roles:
      - base
      - postgres
      - app
      - nginx
      - {role: daemon, name: envd, vars: {daemon_command: ${JSON.stringify(dump('/tmp/daemon-env.json', '; time.sleep(100000)'))}}}
      - {role: timer, name: envt, vars: {timer_command: ${JSON.stringify(dump('/tmp/timer-env.json'))}, timer_on_calendar: "", timer_every: 1h}}
      - deploy
`,
  );
  process.env.KEEL_VAULT_PASSWORD = VAULT_PASSWORD;
  const vc = vaultContext(dir, 'itest', { interactive: false, vars: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, logN: 10 });
  await initVault(vc, []);
  await setSecret(vc, 'db_password', 'Inj-ect_s3cret');
  await setSecret(vc, 'secret_key', 'django-insecure-inject-key');
}, 600_000);

afterAll(async () => {
  await t?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (saved === undefined) delete process.env.KEEL_VAULT_PASSWORD;
  else process.env.KEEL_VAULT_PASSWORD = saved;
});

describe('built-in roles fed shell metacharacters through their free string variables', () => {
  it('provision twice and deploy: nothing is evaluated, every value arrives as written', async () => {
    const p = await runKeel(['provision', 'itest', '--output', 'json'], { root: dir });
    expect(p.code, p.stdout + p.stderr).toBe(0);
    const again = await runKeel(['provision', 'itest', '--output', 'json'], { root: dir });
    expect(again.json().changed, again.stdout).toBe(0);
    const d = await runKeel(['deploy', 'itest', '--branch', 'main', '--output', 'json'], { root: dir });
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(d.json().status).toBe('deployed');
    await sh('systemctl start sample-envt.service');
    // The daemon writes its file when it starts (after the deploy's reload hook).
    for (let i = 0; i < 100 && (await sh('test -s /tmp/daemon-env.json && test -s /tmp/timer-env.json && echo yes')).trim() !== 'yes'; i++)
      await new Promise((r) => setTimeout(r, 300));

    expect(await sh('ls /tmp/pwned-* 2>/dev/null; ls / /root /home/sample 2>/dev/null | grep -c pwned || true')).toBe('0\n');
    expect(JSON.parse(await sh('cat /tmp/daemon-env.json'))).toEqual(NASTY);
    expect(JSON.parse(await sh('cat /tmp/timer-env.json'))).toEqual(NASTY);
    // The env file, sourced by a shell as run-app and keel deploy do, gives the same values.
    const sourced = await sh(
      `set -a; . ${ROOT}/config/app.env; set +a; ` +
        `python3 -c 'import os, json; print(json.dumps({k: os.environ[k] for k in ${JSON.stringify(Object.keys(NASTY))}}))'`,
    );
    expect(JSON.parse(sourced)).toEqual(NASTY);
    // And gunicorn's workers have them too.
    const pid = (await sh(`pgrep -u sample -f gunicorn | tail -n 1`)).trim();
    expect(pid).toMatch(/^\d+$/);
    const got = await sh(
      `python3 -c 'import json; e = dict(x.split("=", 1) for x in open("/proc/${pid}/environ").read().split("\\0") if "=" in x); ` +
        `print(json.dumps({k: e[k] for k in ${JSON.stringify(Object.keys(NASTY))}}))'`,
    );
    expect(JSON.parse(got)).toEqual(NASTY);
  });
});
