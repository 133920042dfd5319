// keel deploy on two real targets: web1 (PostgreSQL, gunicorn under supervisor, nginx) and
// worker1 (a worker process running the release's code, no web server), the sample Django app
// of examples/sample-app from a git repository made by its make-repo.sh, secrets in the vault.
// Each scenario builds on the one before (one provision, then deploys), as a user would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { shExec, startTarget, type TestTarget } from '../helpers/target.js';
import { exited, runKeel, spawnKeel } from '../helpers/cli.js';
import { describeCounts, requestsDuring } from '../helpers/requests.js';
import { vaultContext } from '../../src/vault/store.js';
import { initVault, setSecret } from '../../src/vault/operations.js';

const VAULT_PASSWORD = 'itest-vault-passphrase';
const DB_PASSWORD = 'Dep-loy_s3cret';
const ROOT = '/home/sample/webapp';
const repoRoot = resolve(import.meta.dirname, '..', '..');

let web: TestTarget;
let worker: TestTarget;
let dir: string;
const saved = process.env.KEEL_VAULT_PASSWORD;

// ITWORKER_ROLE's worker program and its reload and check hooks (the hooks as YAML escapes).
const WORKER_PY = "import django, os, time; open('/tmp/worker-started', 'a').write(os.getcwd() + chr(10)); time.sleep(100000)";
const RELOAD_HOOK = '#!/bin/sh\\nif [ -e {{app_root}}/current/. ]; then exec systemctl restart sample-worker; else exec systemctl stop sample-worker; fi\\n';
// Exits 1 ("still starting") while the live release is the commit named in /tmp/hold-health: a
// health wait a test can make certain for one release (the one it switches back from passes).
// (YAML escapes: the hook is the content of a double-quoted string in ITWORKER_ROLE.)
const CHECK_HOOK =
  '#!/bin/sh\\nsystemctl is-active --quiet sample-worker || exit 2\\n' +
  '[ \\"$(cat {{app_root}}/current/REVISION 2>/dev/null)\\" != \\"$(cat /tmp/hold-health 2>/dev/null)\\" ]\\n';

/** A stand-in for role rq on the worker host: the release's python running a loop that
 *  imports the app, restarted by keel deploy through the reload hook docs/layout.md defines. */
const ITWORKER_ROLE = `description: test only - a worker process of the app, with deploy hooks
resources:
  - file:
      path: /etc/systemd/system/sample-worker.service
      content: |
        [Unit]
        ConditionPathExists={{app_root}}/current/
        [Service]
        User={{app_user}}
        WorkingDirectory={{app_root}}/current
        EnvironmentFile={{app_env_file}}
        ExecStart={{app_root}}/current/.venv/bin/python -c "${WORKER_PY}"
        Restart=always
        [Install]
        WantedBy=multi-user.target
  - service: {name: sample-worker, enabled: true, daemon_reload: true}
  - directory: {path: "/etc/keel/apps/{{app_name}}/{{item}}", owner: root, group: root, mode: "0755"}
    loop: ["", reload.d, check.d]
  - file: {path: "/etc/keel/apps/{{app_name}}/reload.d/worker", owner: root, group: root, mode: "0755", content: "${RELOAD_HOOK}"}
  - file: {path: "/etc/keel/apps/{{app_name}}/check.d/worker", owner: root, group: root, mode: "0755", content: "${CHECK_HOOK}"}
`;

/** stdout, whatever the exit code. */
const sh = async (t: TestTarget, cmd: string) => (await shExec(t, cmd)).stdout;
const live = async (t: TestTarget) => (await sh(t, `readlink ${ROOT}/current || echo none`)).trim();
const page = async () => sh(web, 'curl -s http://127.0.0.1/');
const deploy = (branch: string, ...more: string[]) => runKeel(['deploy', 'itest', '--branch', branch, '--output', 'json', ...more], { root: dir });
/** Where the worker process started last (it writes its working directory when it starts). */
const workerCwd = async () => (await sh(worker, 'tail -n 1 /tmp/worker-started')).trim();
const workerStarts = async () => (await sh(worker, 'cat /tmp/worker-started 2>/dev/null')).split('\n').filter(Boolean).length;
const lockFree = async () =>
  (await sh(web, 'test -e /var/lib/keel/lock && echo held || echo free')).trim() === 'free' &&
  (await sh(worker, 'test -e /var/lib/keel/lock && echo held || echo free')).trim() === 'free';

beforeAll(async () => {
  // Warm targets (the stack's Debian packages preinstalled): this file tests deploys, not installs.
  [web, worker] = await Promise.all([startTarget({ name: 'web1', warm: true }), startTarget({ name: 'worker1', warm: true })]);
  dir = mkdtempSync(join(tmpdir(), 'keel-deploy-'));
  execFileSync('sh', [join(repoRoot, 'examples', 'sample-app', 'make-repo.sh'), join(dir, 'app-repo')]);
  mkdirSync(join(dir, 'inventories'));
  mkdirSync(join(dir, 'roles', 'itworker'), { recursive: true });
  writeFileSync(join(dir, 'roles', 'itworker', 'role.yaml'), ITWORKER_ROLE);
  writeFileSync(join(dir, 'known_hosts'), readFileSync(web.knownHostsFile, 'utf8') + readFileSync(worker.knownHostsFile, 'utf8'));
  writeFileSync(
    join(dir, 'inventories', 'itest.yaml'),
    `known_hosts: ../known_hosts
vars:
  app_user: sample
  app_module: sample.wsgi:application
  app_system_packages: [python3-django, python3-psycopg2, python3-redis, python3-rq, gettext]
  database_url: "postgresql://sample:{{secrets.db_password}}@localhost:5432/sample"
  app_env: {SECRET_KEY: "{{secrets.secret_key}}", STATIC_ROOT: "${ROOT}/static", ALLOWED_HOSTS: "*"}
  deploy_repo: app-repo
  deploy_keep_releases: 3
hosts:
  web1: {address: 127.0.0.1, port: ${web.port}, user: root, key: ${web.keyFile}, groups: [web]}
  worker1: {address: 127.0.0.1, port: ${worker.port}, user: root, key: ${worker.keyFile}, groups: [workers]}
groups:
  web:
    roles: [base, postgres, app, nginx, deploy]
    vars: {postgres_database: sample, postgres_user: sample}
  workers:
    roles: [base, app, itworker, deploy]
    vars: {app_server: none, deploy_build_commands: ["$PYTHON manage.py compilemessages"]}
`,
  );
  process.env.KEEL_VAULT_PASSWORD = VAULT_PASSWORD;
  const vc = vaultContext(dir, 'itest', { interactive: false, vars: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, logN: 10 });
  await initVault(vc, []);
  await setSecret(vc, 'db_password', DB_PASSWORD);
  await setSecret(vc, 'secret_key', 'django-insecure-itest-key');
  const p = await runKeel(['provision', 'itest', '--output', 'json'], { root: dir });
  expect(p.code, p.stdout + p.stderr).toBe(0);
  const again = await runKeel(['provision', 'itest', '--output', 'json'], { root: dir });
  expect(again.json().changed, again.stdout).toBe(0);
}, 900_000);

afterAll(async () => {
  await Promise.all([web?.stop(), worker?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (saved === undefined) delete process.env.KEEL_VAULT_PASSWORD;
  else process.env.KEEL_VAULT_PASSWORD = saved;
});

describe('keel deploy on a web host and a worker host', () => {
  let v1 = '';

  it('v1 from --branch main: served through nginx, a verified dump first, the release holds the sha, the worker runs it', async () => {
    const started = Date.now();
    const r = await deploy('main');
    const j = r.json();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(j.status).toBe('deployed');
    v1 = j.release;
    console.log(
      `first deploy: ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `steps: ${j.hosts[0].steps.map((s: any) => `${s.phase}/${s.name} ${s.durationMs}ms`).join(', ')}`,
    );
    expect(await page()).toMatch(/^version: v1$/m);
    expect(await page()).toMatch(new RegExp(`^revision: ${j.sha}$`, 'm'));
    expect((await sh(web, `cat ${ROOT}/releases/${v1}/REVISION`)).trim()).toBe(j.sha);
    expect(j.dump.path).toBe(`${ROOT}/backups/${v1}.dump`);
    // Taken before the first migration: a valid archive of the still empty database.
    expect(await sh(web, `pg_restore --list ${j.dump.path} > /dev/null && echo readable`)).toBe('readable\n');
    expect(await sh(web, `ls ${ROOT}/backups`)).not.toContain('.partial');
    expect(await live(worker)).toBe(`releases/${v1}`);
    expect(await workerCwd()).toBe(`${ROOT}/releases/${v1}`);
    // The app server runs v1 in slot a; nginx sends traffic there.
    expect(await sh(web, '/usr/local/sbin/appctl-app live-slot')).toBe('a\n');
    expect(await sh(web, `readlink ${ROOT}/slots/a`)).toBe(`../releases/${v1}\n`);
    expect(await lockFree()).toBe(true);
    expect(r.stdout).not.toContain(DB_PASSWORD);
  });

  it('v2 with a failing migration: v1 still serves, the lock is free, the dump is there, the message names the migration', async () => {
    const r = await deploy('v2-bad-migration');
    const j = r.json();
    expect(r.code).toBe(2);
    expect(j.status).toBe('failed');
    expect(j.error).toMatch(/migrate failed on web1 at migrate \(exit 1\) while applying counter\.0002_fail_on_purpose/);
    expect(j.error).toMatch(/fails on purpose/);
    // The failed migration rolled back (nothing completed): a restore would only lose writes.
    expect(j.migrated).toBe(false);
    expect(j.error).not.toContain('keel backup restore');
    expect(await sh(web, `test -s ${j.dump.path} && echo dumped`)).toBe('dumped\n');
    expect(await page()).toMatch(/^version: v1$/m);
    expect(await live(web)).toBe(`releases/${v1}`);
    expect(await live(worker)).toBe(`releases/${v1}`);
    expect(await sh(web, `cat ${ROOT}/releases/${j.release}/.keel-failed`)).toMatch(/^migrate failed on web1/);
    expect(await lockFree()).toBe(true);
  });

  // After a rollback across an alembic migration, the old code's `alembic upgrade head` fails
  // with these words. A stand-in for alembic (it is not installable here: no PyPI): a migrate
  // command that says what alembic says, with its exit code.
  it('a migrate command standing in for alembic says "Can\'t locate revision": the error says the database is ahead of this code', async () => {
    writeFileSync(join(dir, 'alembic-ahead.yaml'), `deploy_migrate_command: 'echo "FAILED: Can''t locate revision identified by ''0007''" >&2; exit 255'\n`);
    const r = await deploy('v4-code-only', '-e', '@alembic-ahead.yaml');
    const j = r.json();
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(j.status).toBe('failed');
    expect(j.error).toMatch(/the database is ahead of this code: .* to revision 0007, which this one does not have/);
    expect(j.error).toMatch(/restore the dump taken before it/);
    expect(await page()).toMatch(/^version: v1$/m);
    expect(await live(web)).toBe(`releases/${v1}`);
    expect(await lockFree()).toBe(true);
  });

  // The bad release starts beside v1 and is asked /ping directly: it answers 500 three times in
  // a row, so it fails within seconds, and never gets traffic. Its home page says "version: v3":
  // a request loop through nginx during the deploy counts the answers that carry it.
  it('v3 whose health check fails: rejected before any traffic reaches it, fast; workers never touched; 0 requests fail', async () => {
    const before = await workerStarts();
    const started = Date.now();
    writeFileSync(join(dir, 'slow-start-allowed.yaml'), 'deploy_health_timeout: 120\n');
    const { result: r, counts } = await requestsDuring(web, () => deploy('v3-bad-health', '-e', '@slow-start-allowed.yaml'), { marker: 'version: v3' });
    const took = Date.now() - started;
    const j = r.json();
    console.log(`v3 (bad /ping) deploy: ${(took / 1000).toFixed(1)} s; requests during it: ${describeCounts(counts)}`);
    expect(r.code).toBe(2);
    expect(j.status).toBe('failed');
    expect(j.error).toMatch(/check failed on web1 at check-web/);
    expect(j.error).toMatch(/GET \/ping on slot b answered 500, 3 times in a row/);
    expect(j.error).toMatch(/failed its checks before it got any traffic/);
    // A definite failure ends the wait: seconds, not the 120 s allowed for a slow start.
    expect(j.hosts[0].steps.find((st: any) => st.phase === 'check').durationMs).toBeLessThan(60_000);
    expect(counts.marked).toBe(0);
    expect(counts.failed).toBe(0);
    expect(await page()).toMatch(/^version: v1$/m);
    expect(await live(web)).toBe(`releases/${v1}`);
    expect(await live(worker)).toBe(`releases/${v1}`);
    expect(await workerStarts()).toBe(before);
    expect(await sh(web, '/usr/local/sbin/appctl-app live-slot')).toBe('a\n');
    expect(await sh(web, 'supervisorctl status app-b | awk "{print \\$2}"')).not.toMatch(/RUNNING/);
    expect(j.hosts.map((h: any) => h.live)).toEqual([v1, v1]);
    expect(await lockFree()).toBe(true);
  });

  it('v4 (a new migration): a request loop through nginx during the deploy counts 0 failed requests', async () => {
    const { result: r, counts } = await requestsDuring(web, () => deploy('v4'));
    console.log(`requests during the v4 deploy: ${describeCounts(counts)}`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(counts.total).toBeGreaterThan(20);
    expect(counts.failed).toBe(0);
    expect(await sh(web, '/usr/local/sbin/appctl-app live-slot')).toBe('b\n');
    expect(await page()).toMatch(/^version: v4$/m);
    // Still answering v4 requests with the new column: the migration ran.
    expect(
      await sh(
        web,
        'runuser -u postgres -- psql -XAtc ' +
          `"select count(*) from information_schema.columns where table_name='counter_hit' and column_name='user_agent'" sample`,
      ),
    ).toBe('1\n');
  });

  it('a code-only deploy reuses the virtualenv; 0 requests fail', async () => {
    const started = Date.now();
    const { result: r, counts } = await requestsDuring(web, () => deploy('v4-code-only'));
    const took = Date.now() - started;
    const j = r.json();
    expect(r.code, r.stdout).toBe(0);
    const venv = j.hosts[0].steps.find((s: any) => s.phase === 'build' && s.name === 'virtualenv');
    expect(venv.output).toMatch(/reused the virtualenv/);
    const per = j.hosts[0].steps.map((s: any) => `${s.phase}/${s.name} ${s.durationMs ?? '-'}ms`).join(', ');
    console.log(`code-only deploy to 2 hosts: ${(took / 1000).toFixed(1)} s (${per}); requests: ${describeCounts(counts)}`);
    expect(counts.failed).toBe(0);
    expect(await page()).toMatch(/^change: code only$/m);
  });

  // A new virtualenv means the app server restarts on another environment: with slots that is
  // a new slot like any other, so no request fails either (before, requirements changes gave 502s).
  it('a deploy whose requirements changed builds a new virtualenv and still fails 0 requests', async () => {
    const { result: r, counts } = await requestsDuring(web, () => deploy('v5-requirements'));
    console.log(`requirements-changed deploy: ${describeCounts(counts)}`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const venv = r.json().hosts[0].steps.find((s: any) => s.phase === 'build' && s.name === 'virtualenv');
    expect(venv.output).not.toMatch(/reused/);
    expect(counts.failed).toBe(0);
  });

  // app_requirements "" means no requirements: the environment must not change with each commit.
  it('app_requirements "": two deploys of different commits reuse one virtualenv', async () => {
    writeFileSync(join(dir, 'no-requirements.yaml'), 'app_requirements: ""\n');
    const venvOf = (j: any) => j.hosts[0].steps.find((s: any) => s.phase === 'build' && s.name === 'virtualenv').output as string;
    // v4 is older than the live v5 (its ancestor): deployed on purpose.
    const a = await deploy('v4', '-e', '@no-requirements.yaml', '--allow-older');
    expect(a.code, a.stdout + a.stderr).toBe(0);
    const b = await deploy('v4-code-only', '-e', '@no-requirements.yaml');
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(venvOf(b.json())).toMatch(/reused the virtualenv/);
    expect((await sh(web, `readlink ${ROOT}/releases/${a.json().release}/.venv`)).trim()).toBe(
      (await sh(web, `readlink ${ROOT}/releases/${b.json().release}/.venv`)).trim(),
    );
  });

  // Health is more than one URL (issue 24.4): paths with a status and a text, and commands in the
  // release, all asked of the new release before it gets traffic.
  it('deploy_health_checks: a page without the text it must show, or a failing command, rejects the release before any traffic', async () => {
    const before = await live(web);
    writeFileSync(join(dir, 'checks-bad-page.yaml'), 'deploy_health_checks: [{path: /, status: 200, contains: "text the page never shows"}]\n');
    const page = await deploy('v4-code-only', '-e', '@checks-bad-page.yaml');
    expect(page.code).toBe(2);
    expect(page.json().error).toMatch(/GET \/ on slot [ab] answered 200, 3 times in a row \(wanted status 200 containing "text the page never shows"\)/);
    writeFileSync(join(dir, 'checks-bad-command.yaml'), 'deploy_health_checks: [{command: "$PYTHON -c \'import sys; sys.exit(4)\'"}]\n');
    const cmd = await deploy('v4-code-only', '-e', '@checks-bad-command.yaml');
    expect(cmd.code).toBe(2);
    expect(cmd.json().error).toMatch(/check failed on web1 at check-command-1 \(exit 4\)/);
    expect(await live(web)).toBe(before);
    expect(await live(worker)).toBe(before);
    writeFileSync(
      join(dir, 'checks-good.yaml'),
      'deploy_health_checks: [{path: /, status: 200, contains: "change: code only"}, {command: "$PYTHON manage.py check"}]\n',
    );
    const good = await deploy('v4-code-only', '-e', '@checks-good.yaml');
    expect(good.code, good.stdout + good.stderr).toBe(0);
    const steps = good
      .json()
      .hosts[0].steps.filter((st: any) => st.phase === 'check')
      .map((st: any) => st.name);
    expect(steps).toEqual(['check-web', 'check-command-1']);
  });

  it('--check shows what would be deployed and touches nothing', async () => {
    const before = await live(web);
    const r = await runKeel(['deploy', 'itest', '--branch', 'v5-requirements', '--check', '--output', 'json'], { root: dir });
    const j = r.json();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(j).toMatchObject({ check: true, branch: 'v5-requirements', requirementsChanged: true });
    const liveSha = j.hosts[0].liveSha;
    const diff = execFileSync('git', ['-C', join(dir, 'app-repo'), 'diff', '--name-only', liveSha, j.sha], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    expect(j.changedFiles).toBe(diff.length);
    expect(j.migrations).toEqual(diff.filter((f) => /(^|\/)migrations\//.test(f)));
    expect(j.migrationsChanged).toBe(j.migrations.length > 0);
    expect(await live(web)).toBe(before);
    expect(await lockFree()).toBe(true);
  });

  it('keel rollback returns to the previous release with 0 failed requests; keel releases shows it', async () => {
    const rel = await runKeel(['releases', 'itest', '--output', 'json'], { root: dir });
    const liveNow = rel.json().hosts.find((h: any) => h.host === 'web1').live;
    const { result: r, counts } = await requestsDuring(web, () => runKeel(['rollback', 'itest', '--output', 'json', '--yes'], { root: dir }));
    console.log(`requests during the rollback: ${describeCounts(counts)}`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(counts.failed).toBe(0);
    const to = r.json().to;
    expect(to < liveNow).toBe(true);
    expect(await live(web)).toBe(`releases/${to}`);
    expect(await live(worker)).toBe(`releases/${to}`);
    const toSha = rel.json().hosts[0].releases.find((x: any) => x.id === to).sha;
    expect(await page()).toMatch(new RegExp(`^revision: ${toSha}$`, 'm'));
    expect(await lockFree()).toBe(true);
  });

  // deploy_keep_releases is 3: after keep + 2 more good deploys, 3 releases a rollback can go
  // to are left on each host (the live one among them), and the failed ones newer than those.
  it('deploy_keep_releases: after 5 good deploys, 3 good releases are kept on every host, and rollback --to the oldest works', async () => {
    // main is older than the live v4 (its ancestor): deployed on purpose, hence --allow-older.
    for (const branch of ['main', 'v4', 'v4-code-only', 'v4', 'v4-code-only']) {
      const r = await deploy(branch, '--allow-older');
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    const rel = (await runKeel(['releases', 'itest', '--output', 'json'], { root: dir })).json();
    for (const h of rel.hosts) {
      const good = h.releases.filter((x: any) => x.built && !x.failed);
      expect(
        good.map((x: any) => x.id),
        h.host,
      ).toHaveLength(3);
      expect(h.releases.filter((x: any) => x.failed || !x.built).every((x: any) => x.id > good[0].id)).toBe(true);
    }
    const oldest = rel.hosts[0].releases.filter((x: any) => x.built && !x.failed)[0].id;
    const back = await runKeel(['rollback', 'itest', '--to', oldest, '--output', 'json', '--yes'], { root: dir });
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(await live(web)).toBe(`releases/${oldest}`);
    expect(await live(worker)).toBe(`releases/${oldest}`);
  });

  it('a second deploy while one runs fails at once naming the holder; SIGINT mid-deploy leaves the lock free and one release everywhere', async () => {
    // A build hook that takes 3 s gives the interrupt a build to land in.
    writeFileSync(join(dir, 'slow-build.yaml'), 'deploy_hooks: {before_build: ["sleep 3"]}\n');
    const first = await spawnKeel(['deploy', 'itest', '--branch', 'main', '--yes', '--allow-older', '-e', '@slow-build.yaml'], {
      root: dir,
      env: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD },
    });
    const done = exited(first);
    for (let i = 0; i < 200 && (await sh(web, 'test -e /var/lib/keel/lock/owner && echo y')).trim() !== 'y'; i++)
      await new Promise((res) => setTimeout(res, 50));
    const second = await runKeel(['deploy', 'itest', '--branch', 'v4', '--output', 'json'], { root: dir });
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/is locked by .*`keel deploy itest --branch main \(1 -e\)` \(branch main, release \d{8}-\d{6}Z-[0-9a-f]{12}\)/);
    // Interrupt the first during its build hook.
    for (let i = 0; i < 200 && (await sh(web, 'pgrep -x sleep || true')).trim() === ''; i++) await new Promise((res) => setTimeout(res, 50));
    const before = await live(web);
    first.kill('SIGINT');
    const r = await done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stderr).toMatch(/web1 was in build and will finish it on its own/);
    expect(r.stderr).toMatch(/was not switched to: the old release keeps serving/);
    for (let i = 0; i < 100 && !(await lockFree()); i++) await new Promise((res) => setTimeout(res, 200));
    expect(await lockFree()).toBe(true);
    expect(await live(web)).toBe(before);
    expect(await live(worker)).toBe(before);
  });

  // A restore that fails must not lose data: the dump is checked (its checksum, then read
  // whole) before the database is touched, and the restore runs in one transaction. Each case
  // counts the rows of a 200,000-row table before and after.
  it('keel backup restore of a corrupt or unrestorable dump leaves every row; a good one restores', async () => {
    const psql = (sql: string, db = 'sample') => sh(web, `runuser -u postgres -- psql -XAtc "${sql}" ${db}`);
    const fill = 'create table filler as select g as id, md5(g::text) as t from generate_series(1, 200000) g';
    await psql(`drop table if exists filler; ${fill}; alter table filler owner to sample`);
    const rows = async () => (await psql('select count(*) from filler')).trim();
    expect(await rows()).toBe('200000');
    const b = await runKeel(['backup', 'itest', '--output', 'json'], { root: dir });
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const good = b.json().path as string;
    expect(await sh(web, `test -s ${good}.sha256 && echo recorded`)).toBe('recorded\n');
    const restore = (file: string) => runKeel(['backup', 'restore', 'itest', file, '--yes'], { root: dir });
    // One byte flipped in the middle of a copy (no checksum beside it): reading it whole fails.
    const size = Number((await sh(web, `stat -c %s ${good}`)).trim());
    const flip = `printf '\\377' | dd of=/tmp/corrupt.dump bs=1 seek=${Math.floor(size / 2)} conv=notrunc 2>/dev/null`;
    await sh(web, `cp ${good} /tmp/corrupt.dump && ${flip} && chown sample /tmp/corrupt.dump`);
    const corrupt = await restore('/tmp/corrupt.dump');
    console.log(`restore of a corrupt copy: exit ${corrupt.code}\n${corrupt.stdout}${corrupt.stderr}`);
    expect(corrupt.code).toBe(2);
    expect(corrupt.stdout + corrupt.stderr).toMatch(/cannot read \/tmp\/corrupt\.dump whole.*the database is unchanged/);
    expect(await rows()).toBe('200000');
    // The same byte flipped in a dump keel verified (checksum beside it): refused before reading.
    const named = `${ROOT}/backups/corrupt-verified.dump`;
    await sh(web, `cp /tmp/corrupt.dump ${named} && cp ${good}.sha256 ${named}.sha256 && chown sample ${named}*`);
    const changed = await restore(named);
    expect(changed.code).toBe(2);
    expect(changed.stdout + changed.stderr).toMatch(/changed since it was verified .*it is corrupt; the database is unchanged/);
    expect(await rows()).toBe('200000');
    await sh(web, `rm -f ${named} ${named}.sha256`);
    // A dump that reads fine but fails half-way through the restore (it creates an extension only
    // a superuser may create, after --clean dropped filler): rolled back, filler still there.
    await sh(
      web,
      'runuser -u postgres -- sh -c "cd / && dropdb --if-exists fdwsrc && createdb fdwsrc && psql -XAtqc \'create extension postgres_fdw; ' +
        'create table filler (id int)\' fdwsrc && pg_dump -Fc -f /tmp/fdw.dump fdwsrc" && chown sample /tmp/fdw.dump',
    );
    const half = await restore('/tmp/fdw.dump');
    console.log(`restore that fails half-way: exit ${half.code}\n${half.stdout}${half.stderr}`);
    expect(half.code).toBe(2);
    expect(half.stdout + half.stderr).toMatch(/in one transaction, rolled back.*the database is unchanged/);
    expect(await rows()).toBe('200000');
    // And the verified dump restores: rows deleted since come back.
    await psql('delete from filler where id <= 1000');
    const ok = await restore(good);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(await rows()).toBe('200000');
    expect(ok.stdout + ok.stderr).not.toMatch(/could not change directory/);
    expect(await lockFree()).toBe(true);
  });

  // deploy_backup_keep counts every dump, those of failed deploys too; the one taken before the
  // last migration that changed the database stays whatever the count.
  it('dump retention keeps the dump taken before the last applied migration; keel backups says which dump preceded what', async () => {
    writeFileSync(join(dir, 'keep2.yaml'), 'deploy_backup_keep: 2\n');
    // Undo v4's migration with v4's code (only code that has a migration can undo it), so that
    // deploying v4 again, after main, applies it.
    expect((await deploy('v4')).code).toBe(0);
    const undo = await shExec(
      web,
      `cd ${ROOT}/current && runuser -u sample -- sh -c 'set -a; . ${ROOT}/config/app.env; set +a; .venv/bin/python manage.py migrate counter 0001'`,
    );
    expect(undo.code, undo.stdout + undo.stderr).toBe(0);
    expect(undo.stdout).toMatch(/Unapplying counter\.0002/);
    await deploy('main', '--allow-older'); // code without 0002 live (older than v4 on purpose), so that v4 below migrates
    const migrated = await deploy('v4', '-e', '@keep2.yaml');
    expect(migrated.code, migrated.stdout + migrated.stderr).toBe(0);
    expect(migrated.json().migrated, JSON.stringify(migrated.json().hosts[0].steps.find((st: any) => st.phase === 'migrate'))).toBe(true);
    const kept = migrated.json().dump.path as string;
    for (let i = 0; i < 3; i++) expect((await deploy('v3-bad-health', '-e', '@keep2.yaml')).code).toBe(2);
    const dumps = (await sh(web, `ls ${ROOT}/backups`)).split('\n').filter((f) => f.endsWith('.dump'));
    expect(dumps).toContain(kept.replace(/^.*\//, ''));
    expect(dumps).toHaveLength(3); // the 2 newest + the one before the migration
    const list = await runKeel(['backups', 'itest', '--output', 'json', '-e', '@keep2.yaml'], { root: dir });
    const entry = list.json().dumps.find((d: any) => d.path === kept);
    expect(entry).toMatchObject({ migrated: true, verified: true, releaseState: 'live' });
    expect(
      list
        .json()
        .dumps.filter((d: any) => d.path !== kept)
        .every((d: any) => !d.migrated && /^failed/.test(d.releaseState)),
    ).toBe(true);
  });

  // The docs promise a prompt exit 130 with every host back when Ctrl-C comes while the deploy
  // waits for its health check after the switch (the wait runs in rounds of a few seconds).
  it('SIGINT during the health wait after the switch: exit 130 within seconds, every host back on the previous release', async () => {
    const before = await live(web);
    const v4 = execFileSync('git', ['-C', join(dir, 'app-repo'), 'rev-parse', 'v4'], { encoding: 'utf8' }).trim();
    await sh(worker, `echo ${v4} > /tmp/hold-health`);
    writeFileSync(join(dir, 'long-health.yaml'), 'deploy_health_timeout: 300\n');
    try {
      const child = await spawnKeel(['deploy', 'itest', '--branch', 'v4', '--yes', '-e', '@long-health.yaml'], {
        root: dir,
        env: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD },
      });
      const done = exited(child);
      // Switched (the worker's current moved) and waiting for the worker's check hook.
      for (let i = 0; i < 600 && (await live(worker)) === before; i++) await new Promise((res) => setTimeout(res, 100));
      expect(await live(worker)).not.toBe(before);
      const sent = Date.now();
      child.kill('SIGINT');
      const r = await done;
      const took = Date.now() - sent;
      console.log(`SIGINT during the health wait: exit ${r.code} ${took} ms after the signal`);
      expect(r.code, r.stdout + r.stderr).toBe(130);
      // Not a speed target: within a few rounds, not the 300 s the wait allows.
      expect(took).toBeLessThan(60_000);
      expect(await live(web)).toBe(before);
      expect(await live(worker)).toBe(before);
      expect(await page()).toMatch(/^version: v4$/m);
      for (let i = 0; i < 100 && !(await lockFree()); i++) await new Promise((res) => setTimeout(res, 200));
      expect(await lockFree()).toBe(true);
    } finally {
      await sh(worker, 'rm -f /tmp/hold-health');
    }
  });

  it('a failing pg_dump (wrong password; a full disk) stops the deploy before anything changes and leaves no .partial', async () => {
    const before = await live(web);
    writeFileSync(join(dir, 'wrong-db.yaml'), 'database_url: "postgresql://sample:wrong-password@localhost:5432/sample"\n');
    const wrong = await deploy('v4', '-e', '@wrong-db.yaml');
    expect(wrong.code).toBe(2);
    expect(wrong.json().error).toMatch(/dump failed on web1 at space|dump failed on web1 at pg_dump/);
    expect(wrong.json().error).toMatch(/password authentication failed/);
    expect(wrong.json().error).toMatch(/no verified dump, so nothing was deployed/);
    expect(await live(web)).toBe(before);

    await sh(web, `mkdir -p /mnt/tiny && mount -t tmpfs -o size=8k tmpfs /mnt/tiny && chown sample /mnt/tiny && chmod 700 /mnt/tiny`);
    writeFileSync(join(dir, 'tiny.yaml'), 'deploy_backup_dir: /mnt/tiny\n');
    const full = await deploy('v4', '-e', '@tiny.yaml');
    expect(full.code).toBe(2);
    expect(full.json().error).toMatch(/dump failed on web1/);
    expect(await sh(web, 'ls -A /mnt/tiny')).not.toMatch(/partial/);
    expect(await live(web)).toBe(before);
    expect(await live(worker)).toBe(before);
    expect(await lockFree()).toBe(true);
    const logs = readdirSync(join(dir, '.keel', 'logs')).filter((f) => f.includes('deploy'));
    expect(logs.length).toBeGreaterThan(0);
  });

  // Seed 000's pain: web and worker on different releases. A --limit that leaves out a host that
  // runs the app is refused before anything runs; keel releases says when hosts disagree.
  it('deploy --limit web1 is refused (exit 1) naming worker1; with --allow-split it deploys, and keel releases flags the split', async () => {
    const before = [await live(web), await live(worker)];
    const refused = await runKeel(['deploy', 'itest', '--branch', 'v4-code-only', '--limit', 'web1', '--output', 'json'], { root: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--limit leaves out worker1, which runs the app too .*web1 would move to the new release, worker1 would stay/);
    expect(refused.stderr).toMatch(/--allow-split/);
    expect([await live(web), await live(worker)]).toEqual(before);
    const split = await runKeel(['deploy', 'itest', '--branch', 'v4-code-only', '--limit', 'web1', '--allow-split', '--output', 'json'], { root: dir });
    expect(split.code, split.stdout + split.stderr).toBe(0);
    const rel = await runKeel(['releases', 'itest', '--output', 'json'], { root: dir });
    expect(rel.json().split).toBe(true);
    const text = await runKeel(['releases', 'itest'], { root: dir });
    expect(text.stdout).toMatch(/hosts run different releases: web1 runs \S+, worker1 runs \S+/);
    const status = await runKeel(['status', 'itest', '--output', 'json'], { root: dir });
    expect(status.code).toBe(2);
    expect(status.json().split).toBe(true);
    // Back to one release everywhere.
    expect((await deploy('v4-code-only')).code).toBe(0);
    expect((await runKeel(['releases', 'itest', '--output', 'json'], { root: dir })).json().split).toBe(false);
  });

  it('from a git URL: the host clones with the deploy key from the vault, which never shows and is gone after', async () => {
    // A git server on web1 itself: user git, the bare repository, the deploy key authorized.
    const bare = join(dir, 'app.git');
    execFileSync('git', ['clone', '-q', '--bare', join(dir, 'app-repo'), bare]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'deploy-key', '-f', join(dir, 'deploy_key')]);
    await web.container.copyDirectoriesToContainer([{ source: bare, target: '/srv/git/app.git' }]);
    const pub = readFileSync(join(dir, 'deploy_key.pub'), 'utf8').trim();
    await sh(
      web,
      'id git >/dev/null 2>&1 || useradd -m -s /bin/sh git; install -d -o git -m 700 ~git/.ssh; ' +
        `printf '%s\\n' '${pub}' > ~git/.ssh/authorized_keys; chown -R git /srv/git ~git/.ssh`,
    );
    const hostKey = (await sh(web, 'cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub')).trim();
    const vc = vaultContext(dir, 'itest', { interactive: false, vars: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, logN: 10 });
    const key = readFileSync(join(dir, 'deploy_key'), 'utf8');
    await setSecret(vc, 'deploy_key', key);
    const inv = join(dir, 'inventories', 'itest.yaml');
    const saved = readFileSync(inv, 'utf8');
    writeFileSync(
      inv,
      saved.replace(
        '  deploy_repo: app-repo\n',
        `  deploy_repo: "git@localhost:/srv/git/app.git"\n  deploy_key: "{{secrets.deploy_key}}"\n  deploy_known_hosts: "localhost ${hostKey}"\n`,
      ),
    );
    try {
      const r = await runKeel(['deploy', 'itest', '--branch', 'v4', '--limit', 'web1', '--allow-split', '--output', 'json'], { root: dir });
      const j = r.json();
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(j.sha).toBe(execFileSync('git', ['-C', join(dir, 'app-repo'), 'rev-parse', 'v4'], { encoding: 'utf8' }).trim());
      expect((await sh(web, `cat ${ROOT}/current/REVISION`)).trim()).toBe(j.sha);
      expect(await sh(web, `test -e ${ROOT}/current/.git && echo git || echo clean`)).toBe('clean\n');
      expect(await page()).toMatch(/^version: v4$/m);
      const keyLine = key.split('\n')[1]!;
      expect(r.stdout + r.stderr).not.toContain(keyLine);
      expect(await sh(web, `grep -rl "${keyLine}" /tmp /home/sample 2>/dev/null || echo none`)).toBe('none\n');
    } finally {
      writeFileSync(inv, saved);
    }
  });
});
