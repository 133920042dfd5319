// Operating the live app on two real targets (issue 18): keel exec (words, tasks, several hosts,
// -i on a pseudo-terminal, sudo with a password), keel ssh, keel logs (merged, filtered, -f
// until Ctrl-C), keel status (healthy, then a daemon that keeps failing), and the deploy history
// (keel history, keel releases). One stack for the whole file, provisioned once from the warm
// image, the sample app of examples/sample-app deployed:
//   web1     PostgreSQL, Redis, gunicorn under supervisor, nginx, an rq worker and rq's scheduler
//            (supervisor), a daemon that ticks every second (systemd); user deployp, whose sudo
//            asks for a password
//   worker1  no web server; a daemon that fails while /tmp/keel-crash exists, a timer every 3 s
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { DEPLOYP_PASSWORD, shExec, startTarget, type TestTarget } from '../helpers/target.js';
import { exited, ptyKeel, runKeel, spawnKeel } from '../helpers/cli.js';
import { eventually, until } from '../helpers/wait.js';
import { vaultContext } from '../../src/vault/store.js';
import { initVault, setSecret } from '../../src/vault/operations.js';
import { sh } from '../../src/shell/quote.js';

const VAULT_PASSWORD = 'operate-vault-passphrase';
const SECRET_KEY = 'django-insecure-operate-key';
const ROOT = '/home/sample/webapp';
const ME = `${userInfo().username}@${hostname()}`;
const repoRoot = resolve(import.meta.dirname, '..', '..');

let web: TestTarget;
let worker: TestTarget;
let dir: string;
let v1 = '';
const saved = process.env.KEEL_VAULT_PASSWORD;

const keel = (...args: string[]) => runKeel(args, { root: dir });
const json = async (...args: string[]) => {
  // Before `--`: what follows it is the command's.
  const at = args.includes('--') ? args.indexOf('--') : args.length;
  const r = await keel(...args.slice(0, at), '--output', 'json', ...args.slice(at));
  try {
    return { code: r.code, j: r.json(), out: r.stdout + r.stderr };
  } catch {
    throw new Error(`keel ${args.join(' ')}: exit ${r.code} without JSON:\n${r.stdout}\n${r.stderr}`);
  }
};
const on = async (t: TestTarget, cmd: string) => (await shExec(t, cmd)).stdout;
const pty = (args: string[], size?: { rows: number; cols: number }) => ptyKeel(args, { root: dir, env: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, ...size });
const request = (path: string) => on(web, `curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1${path}'`);

/** Fails (exit 3, saying why) while /tmp/keel-crash exists; else runs. */
const CRASHER =
  String.raw`"sh -c 'if [ -e /tmp/keel-crash ]; then echo crasher: cannot start, /tmp/keel-crash is there >&2; exit 3; fi; ` +
  String.raw`echo crasher up; exec sleep 100000'"`;
const TICKER = String.raw`"python3 -u -c \"import time; [print('tick', i, flush=True) or time.sleep(1) for i in range(10**9)]\""`;

function inventory(webLogin: string): string {
  return `known_hosts: ../known_hosts
vars:
  app_name: sample
  app_user: sample
  app_module: sample.wsgi:application
  app_workers: 2
  app_system_packages: [python3-django, python3-psycopg2, python3-redis, python3-rq, gettext]
  database_url: "postgresql://sample:{{secrets.db_password}}@localhost:5432/sample"
  app_env:
    SECRET_KEY: "{{secrets.secret_key}}"
    STATIC_ROOT: ${ROOT}/static
    ALLOWED_HOSTS: "*"
    REDIS_URL: "redis://:{{secrets.redis_password}}@localhost:6379/0"
  deploy_repo: app-repo
  deploy_tasks:
    hits: "$PYTHON manage.py shell -c 'from counter.models import Hit; print(\\"hits:\\", Hit.objects.count())'"
    slow: "sleep 2; echo MARKER-$((6 * 7)) from $(id -un) in $PWD"
hosts:
  web1: {address: 127.0.0.1, port: ${web.port}, ${webLogin}, key: ${web.keyFile}, groups: [web]}
  worker1: {address: 127.0.0.1, port: ${worker.port}, user: root, key: ${worker.keyFile}, groups: [workers]}
groups:
  web:
    roles:
      - base
      - postgres
      - redis
      - app
      - nginx
      - {role: rq, name: default, vars: {rq_scheduler: true}}
      - {role: daemon, name: ticker, vars: {daemon_command: ${TICKER}}}
      - deploy
    vars: {postgres_database: sample, postgres_user: sample, redis_password: "{{secrets.redis_password}}"}
  workers:
    roles:
      - base
      - app
      - {role: daemon, name: crasher, vars: {daemon_command: ${CRASHER}}}
      - {role: timer, name: tick, vars: {timer_command: date, timer_on_calendar: "", timer_every: 3s}}
      - deploy
    vars: {app_server: none, deploy_build_commands: ["$PYTHON manage.py compilemessages"]}
`;
}

beforeAll(async () => {
  [web, worker] = await Promise.all([startTarget({ name: 'web1', warm: true, users: true }), startTarget({ name: 'worker1', warm: true })]);
  dir = mkdtempSync(join(tmpdir(), 'keel-operate-'));
  execFileSync('sh', [join(repoRoot, 'examples', 'sample-app', 'make-repo.sh'), join(dir, 'app-repo')]);
  mkdirSync(join(dir, 'inventories'));
  writeFileSync(join(dir, 'known_hosts'), readFileSync(web.knownHostsFile, 'utf8') + readFileSync(worker.knownHostsFile, 'utf8'));
  writeFileSync(join(dir, 'inventories', 'itest.yaml'), inventory('user: root'));
  // The same hosts, web1 reached as deployp, whose sudo asks for its password (in the vault).
  writeFileSync(join(dir, 'inventories', 'sudo.yaml'), inventory('user: deployp, become: true'));
  process.env.KEEL_VAULT_PASSWORD = VAULT_PASSWORD;
  const vc = vaultContext(dir, 'itest', { interactive: false, vars: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD }, logN: 10 });
  await initVault(vc, []);
  for (const [k, v] of Object.entries({
    db_password: 'Op-s3cret-db',
    secret_key: SECRET_KEY,
    redis_password: 'Op-redis-pw',
    become_password: DEPLOYP_PASSWORD,
  }))
    await setSecret(vc, k, v);
  const p = await keel('provision', 'itest', '--output', 'json');
  expect(p.code, p.stdout + p.stderr).toBe(0);
  const d = await json('deploy', 'itest', '--branch', 'main');
  expect(d.code, d.out).toBe(0);
  v1 = d.j.release;
}, 900_000);

afterAll(async () => {
  await Promise.all([web?.stop(), worker?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (saved === undefined) delete process.env.KEEL_VAULT_PASSWORD;
  else process.env.KEEL_VAULT_PASSWORD = saved;
});

describe('keel exec', () => {
  const NASTY = ["it's", '"double"', '$(touch /tmp/keel-pwned)', '`id`', 'a  b', 'line1\nline2', '*', '-n', ''];

  it('passes the words as they are to the migrate host, in the live release, as the app user, with the env file, $PYTHON and the virtualenv', async () => {
    const r = await keel('exec', 'itest', '--', 'printf', '[%s]', ...NASTY);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(NASTY.map((w) => `[${w}]`).join('') + '\n');
    expect(await on(web, 'test -e /tmp/keel-pwned && echo pwned || echo clean')).toBe('clean\n');
    const env = await keel('exec', 'itest', '--', 'sh', '-c', 'pwd; id -un; echo "$PYTHON|$VIRTUAL_ENV"; python -c "import django; print(django.VERSION[0])"');
    expect(env.stdout.split('\n')).toEqual([
      `${ROOT}/releases/${v1}`,
      'sample',
      `${ROOT}/releases/${v1}/.venv/bin/python|${ROOT}/releases/${v1}/.venv`,
      '3',
      '',
    ]);
  });

  it('masks secrets in what it prints, and gives the exit code of the command', async () => {
    const r = await keel('exec', 'itest', '--', 'sh', '-c', 'echo "key=$SECRET_KEY"; echo oops >&2; exit 3');
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('key=******\n');
    expect(r.stderr).toContain('oops');
    expect(r.stdout + r.stderr).not.toContain(SECRET_KEY);
  });

  it('--all runs on every deploy host, lines prefixed by host, 2 if any failed; --limit picks hosts', async () => {
    const r = await keel('exec', 'itest', '--all', '--', 'sh', '-c', 'hostname; [ "$(hostname)" = web1 ]');
    expect(r.code).toBe(2);
    expect(r.stdout.split('\n').sort()).toEqual(['', 'web1    | web1', 'worker1 | worker1']);
    expect(r.stderr).toContain('web1: exit 0');
    expect(r.stderr).toContain('worker1: exit 1');
    const w = await json('exec', 'itest', '--limit', 'workers', '--', 'hostname');
    expect(w.j.hosts.map((h: any) => [h.host, h.code, h.stdout])).toEqual([['worker1', 0, 'worker1\n']]);
  });

  it('--task runs a command of the inventory; its text is on no command line; the staged script is gone', async () => {
    const hits = await keel('exec', 'itest', '--task', 'hits');
    expect(hits.code, hits.stderr).toBe(0);
    expect(hits.stdout).toMatch(/^hits: \d+$/m);
    const run = keel('exec', 'itest', '--task', 'slow');
    let seen = '';
    const end = Date.now() + 2000;
    while (Date.now() < end) seen += await on(web, 'ps -eo args');
    const r = await run;
    expect(r.stdout).toBe(`MARKER-42 from sample in ${ROOT}/releases/${v1}\n`);
    expect(seen).toContain('sleep 2');
    expect(seen).not.toContain('MARKER');
    expect(await on(web, 'ls -A /var/lib/keel/run')).toBe('');
    const typo = await keel('exec', 'itest', '--task', 'hit');
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('no task "hit" in deploy_tasks (did you mean "hits"?); tasks: hits, slow');
  });

  it('-i gives the command a terminal: its size, stdin, and Ctrl-C as SIGINT to the remote command', async () => {
    const script = 'stty size; echo ready; read line; echo "got: $line"; trap "echo got-INT; exit 7" INT; echo trapping; while :; do sleep 0.2; done';
    const t = await pty(['exec', 'itest', '-i', '--', 'sh', '-c', script], { rows: 45, cols: 123 });
    await t.waitFor(/45 123\r*\n/);
    await t.waitFor(/ready/);
    t.type('hello world\r');
    await t.waitFor(/got: hello world/);
    await t.waitFor(/trapping/);
    t.type('\x03');
    await t.waitFor(/got-INT/);
    expect(await t.exited).toBe(7);
  });

  it('through sudo with a password (deployp): answered once, never shown, with and without a terminal', async () => {
    const sudo = ['--inventory', 'inventories/sudo.yaml'];
    const r = await keel('exec', 'itest', ...sudo, '--', 'sh', '-c', 'id -un; pwd');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`sample\n${ROOT}/releases/${v1}\n`);
    const t = await pty(['exec', 'itest', ...sudo, '-i', '--', 'sh', '-c', 'id -un; tty; echo done']);
    expect(await t.exited).toBe(0);
    expect(t.output()).toMatch(/sample\r*\n\/dev\/pts\/\d+\r*\ndone/);
    expect(t.output()).not.toContain(DEPLOYP_PASSWORD);
    expect(t.output()).not.toContain('keel-sudo-password');
  });
});

describe('keel ssh', () => {
  it('opens a login shell as the inventory user, in the live release; exit code passed on', async () => {
    const t = await pty(['ssh', 'itest']);
    await t.waitFor(/[#$] $/);
    t.type('echo "at $(pwd) as $(id -un) on $(hostname)"\r');
    await t.waitFor(new RegExp(`at ${ROOT}/current as root on web1`));
    t.type('exit 3\r');
    expect(await t.exited).toBe(3);
    const w = await pty(['ssh', 'itest', 'worker1']);
    await w.waitFor(/[#$] $/);
    w.type('echo "at $(pwd) on $(hostname)"; exit\r');
    await w.waitFor(new RegExp(`at ${ROOT}/current on worker1`));
    expect(await w.exited).toBe(0);
  });

  it('as deployp: its own shell (no sudo), told it cannot enter the release', async () => {
    const t = await pty(['ssh', 'itest', 'web1', '--inventory', 'inventories/sudo.yaml']);
    await t.waitFor(/[#$] $/);
    expect(t.output()).toContain(`keel: cannot enter ${ROOT}/current as deployp (not there, or not allowed): you are in your home`);
    t.type('echo "at $(pwd) as $(id -un)"; exit\r');
    await t.waitFor(/at \/home\/deployp as deployp/);
    expect(await t.exited).toBe(0);
  });
});

describe('keel logs', () => {
  it('merges the logs of every host by time, each line with its host and source', async () => {
    await eventually(async () => {
      const { j } = await json('logs', 'itest', '-n', '5');
      const hosts = new Set(j.lines.map((l: any) => l.host));
      expect([...hosts].sort()).toEqual(['web1', 'worker1']);
      const sources = new Set(j.lines.map((l: any) => `${l.host} ${l.source}`));
      for (const s of ['web1 gunicorn/error', 'web1 rq/default-1', 'web1 ticker/ticker', 'worker1 tick/tick', 'worker1 journal']) expect(sources).toContain(s);
      const times = j.lines.map((l: any) => l.time);
      expect(times).toEqual([...times].sort());
      expect(times.every((t: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(t))).toBe(true);
    });
  });

  it('app, worker, nginx, a daemon or a timer by name; --grep and --since filter; a name that is not there is a usage error', async () => {
    expect(await request('/?logs-marker-1')).toBe('200');
    const nginx = await json('logs', 'itest', 'nginx', '--since', '5m', '--grep', 'logs-marker-[0-9]');
    expect(nginx.j.lines.map((l: any) => [l.host, l.source])).toEqual([['web1', 'nginx/access']]);
    expect(nginx.j.lines[0].line).toContain('GET /?logs-marker-1 ');
    const app = await json('logs', 'itest', 'app', '--grep', 'logs-marker-1');
    expect(app.j.lines.map((l: any) => l.source)).toEqual(['gunicorn/access']);
    const ticks = await json('logs', 'itest', 'ticker', '-n', '3');
    expect(ticks.j.lines.filter((l: any) => l.source === 'ticker/ticker').map((l: any) => l.line)).toEqual([
      expect.stringMatching(/^tick \d+$/),
      expect.stringMatching(/^tick \d+$/),
      expect.stringMatching(/^tick \d+$/),
    ]);
    const future = await json('logs', 'itest', '--since', '2099-01-01T00:00:00Z');
    expect(future.j.lines).toEqual([]);
    const worker = await json('logs', 'itest', 'worker', '-n', '50');
    expect(worker.j.lines.some((l: any) => l.source === 'rq/default-scheduler')).toBe(true);
    const typo = await keel('logs', 'itest', 'tickr');
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/no log called "tickr" \(did you mean "ticker"\?\) on web1, worker1; there are: app, worker, nginx, ticker, crasher, tick/);
  });

  it('-f follows every host until Ctrl-C, then exits 0 and leaves nothing running on the hosts', async () => {
    const child = await spawnKeel(['logs', 'itest', '-f', '-n', '0', '--grep', 'follow-marker'], { root: dir, env: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD } });
    const done = exited(child);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // Requests until one shows: following starts once the (empty) history is read.
    let n = 0;
    await until('a followed request to show in keel logs -f', async () => {
      await request(`/?follow-marker-${++n}`);
      return /web1 +nginx\/access \| .*GET \/\?follow-marker-\d+ /.test(out);
    });
    child.kill('SIGINT');
    const r = await Promise.race([
      done,
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`keel logs -f did not exit after SIGINT:\n${out}`)), 15_000)),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('stopping');
    for (const t of [web, worker]) {
      await until(`no follower left on ${t.name}`, async () => !/tail -c|journalctl .*-f/.test(await on(t, 'ps -eo args')), { ms: 10_000 });
      expect(await on(t, 'ls -A /var/lib/keel/run')).toBe('');
    }
  });
});

describe('keel status', () => {
  const host = (j: any, name: string) => j.hosts.find((h: any) => h.name === name);
  const proc = (h: any, name: string) => h.processes.find((p: any) => p.name === name);

  it('every host in one round trip: release, processes, nginx, maintenance, disk, lock, newest dump, no drift', async () => {
    await eventually(async () => {
      const { code, j, out } = await json('status', 'itest');
      expect(code, out).toBe(0);
      const w = host(j, 'web1');
      expect(w.roundTrips).toBe(1);
      expect(w.release).toMatchObject({ live: v1, branch: 'main', by: ME, via: 'deploy' });
      expect(Date.parse(w.release.since)).toBeGreaterThan(Date.now() - 3_600_000);
      // The app server runs in one slot: its program (sample-a or sample-b) is the only one.
      const slots = w.processes.filter((p: any) => /^sample-[ab]$/.test(p.name));
      expect(slots).toHaveLength(1);
      for (const name of [slots[0].name, 'sample-rq-default:sample-rq-default-1', 'sample-rq-default-scheduler']) {
        expect(proc(w, name)).toMatchObject({ manager: 'supervisor', state: 'running', restarts: null });
      }
      expect(proc(w, 'sample-ticker.service')).toMatchObject({ manager: 'systemd', state: 'running', restarts: 0 });
      expect(w.checks.every((c: any) => c.ok)).toBe(true);
      expect(w.nginx.state).toBe('active');
      expect(w.maintenance).toEqual({ on: false, since: null });
      expect(w.disk[0]).toMatchObject({ path: ROOT });
      expect(w.disk[0].availableBytes).toBeGreaterThan(0);
      expect(w.dump.path).toBe(`${ROOT}/backups/${v1}.dump`);
      expect(w.lock).toEqual({ state: 'free', holder: null });
      expect(w.drift).toEqual({ changes: 0, resources: [], error: null });
      const k = host(j, 'worker1');
      expect(k.roundTrips).toBe(1);
      expect(proc(k, 'sample-crasher.service')).toMatchObject({ state: 'running' });
      expect(proc(k, 'sample-tick.timer')).toMatchObject({ state: 'waiting' });
      expect(proc(k, 'sample-tick.timer').lastRun).not.toBeNull();
      expect(k.nginx).toBeNull();
    });
  });

  it('maintenance on shows, off again', async () => {
    expect((await keel('maintenance', 'on', 'itest')).code).toBe(0);
    expect(host((await json('status', 'itest', '--limit', 'web1')).j, 'web1').maintenance.on).toBe(true);
    expect((await keel('maintenance', 'off', 'itest')).code).toBe(0);
    expect(host((await json('status', 'itest', '--limit', 'web1')).j, 'web1').maintenance.on).toBe(false);
  });

  it('a daemon that keeps failing: FAILED with its restarts and last log lines, its check failing, the start keel plan would do; exit 2', async () => {
    await on(worker, 'touch /tmp/keel-crash; systemctl restart sample-crasher');
    try {
      await until(
        'systemd to have restarted the crashing daemon twice',
        async () => Number(await on(worker, 'systemctl show -p NRestarts --value sample-crasher')) >= 2,
      );
      const { code, j } = await json('status', 'itest', '--limit', 'worker1');
      expect(code).toBe(2);
      const k = host(j, 'worker1');
      const crasher = proc(k, 'sample-crasher.service');
      expect(crasher.state).toBe('failed');
      expect(crasher.restarts).toBeGreaterThanOrEqual(2);
      expect(crasher.lastLines.filter((l: string) => l === 'crasher: cannot start, /tmp/keel-crash is there').length).toBeGreaterThanOrEqual(2);
      expect(crasher.lastLines.some((l: string) => /sample-crasher\.service: Main process exited, code=exited, status=3/.test(l))).toBe(true);
      expect(k.checks).toContainEqual({ name: 'daemon-crasher', ok: false });
      // What keel plan would do: start it again (the role's start command: the reload hook, then wait).
      expect(k.drift.resources.map((x: any) => x.id)).toContainEqual(
        expect.stringMatching(/^daemon\[crasher\]\/command:\/etc\/keel\/apps\/sample\/reload\.d\/daemon-crasher/),
      );
      const text = await keel('status', 'itest', '--limit', 'worker1');
      expect(text.stdout).toMatch(/sample-crasher\.service +FAILED/);
      expect(text.stdout).toContain('sample-crasher.service FAILED, its last log lines:');
      expect(text.stdout).toContain('    | crasher: cannot start, /tmp/keel-crash is there');
    } finally {
      await on(worker, 'rm -f /tmp/keel-crash; systemctl reset-failed sample-crasher; systemctl restart sample-crasher');
    }
    await until('the daemon to run again', async () => (await on(worker, 'systemctl is-active sample-crasher')).trim() === 'active');
  });
});

describe('deploy history', () => {
  it('records deploys (ok and failed), rollbacks, maintenance switches and lock releases; keel history merges them across hosts', async () => {
    const v4 = await json('deploy', 'itest', '--branch', 'v4');
    expect(v4.code, v4.out).toBe(0);
    const bad = await json('deploy', 'itest', '--branch', 'v2-bad-migration');
    expect(bad.j.status).toBe('failed');
    // Interrupted in its build (a hook that takes 3 s): the line says so, nothing switched.
    writeFileSync(join(dir, 'slow-build.yaml'), 'deploy_hooks: {before_build: ["sleep 3"]}\n');
    const slow = await spawnKeel(['deploy', 'itest', '--branch', 'main', '--yes', '--allow-older', '-e', '@slow-build.yaml'], {
      root: dir,
      env: { KEEL_VAULT_PASSWORD: VAULT_PASSWORD },
    });
    const slowDone = exited(slow);
    await until('the slow build hook to run on web1', async () => (await on(web, 'pgrep -x sleep || true')).trim() !== '', { every: 50 });
    slow.kill('SIGINT');
    expect((await slowDone).code).toBe(130);
    await until(
      'the interrupted deploy to release its locks',
      async () => !(await on(web, 'ls /var/lib/keel')).includes('lock') && !(await on(worker, 'ls /var/lib/keel')).includes('lock'),
    );
    const back = await json('rollback', 'itest', '--yes');
    expect(back.code, back.out).toBe(0);
    expect(back.j.to).toBe(v1);
    // A stale lock (its run's shell is gone) on worker1, cleared by keel lock release.
    const owner = ['run_id=gone', 'user=carol', 'controller=old-laptop', 'command=deploy itest', 'holder_pid=999999', 'holder_start=1'];
    await on(worker, sh`mkdir /var/lib/keel/lock && printf '%s\\n' ${owner} > /var/lib/keel/lock/owner`.text);
    expect((await keel('lock', 'release', 'itest')).code).toBe(0);

    const { code, j } = await json('history', 'itest');
    expect(code).toBe(0);
    const rows = j.runs.map((r: any) => [r.what, r.result, r.hosts.map((h: any) => `${h.host}:${h.from || '-'}>${h.to || '-'}`).join(' ')]);
    expect(rows).toEqual([
      ['deploy', 'ok', `web1:->${v1} worker1:->${v1}`],
      ['maintenance on', 'ok', 'web1:->on'],
      ['maintenance off', 'ok', 'web1:->off'],
      ['deploy', 'ok', `web1:${v1}>${v4.j.release} worker1:${v1}>${v4.j.release}`],
      ['deploy', 'failed', `web1:${v4.j.release}>${v4.j.release} worker1:${v4.j.release}>${v4.j.release}`],
      ['deploy', 'interrupted', `web1:${v4.j.release}>${v4.j.release} worker1:${v4.j.release}>${v4.j.release}`],
      ['rollback', 'ok', `web1:${v4.j.release}>${v1} worker1:${v4.j.release}>${v1}`],
      ['lock release', 'ok', 'worker1:locked>free'],
    ]);
    expect(j.runs.every((r: any) => r.who === ME)).toBe(true);
    expect(j.runs[0].command).toBe('deploy itest --branch main');
    expect(j.runs[4].detail).toMatch(/^v2-bad-migration @ [0-9a-f]{12} as \S+: migrate failed on web1 at migrate/);
    expect(j.runs[5].detail).toMatch(/^main @ [0-9a-f]{12} as \S+$/);
    expect(j.runs[7].detail).toMatch(/removed the stale lock of carol@old-laptop/);
    expect(j.runs.every((r: any) => r.durationMs >= 0 && Date.parse(r.time) > 0)).toBe(true);
    const text = await keel('history', 'itest');
    expect(text.stdout).toMatch(new RegExp(`rollback  ok  [\\d.]+ s  by ${ME.replace(/[.]/g, '\\.')}  \`keel rollback itest\``));

    // Who made the live release live, and who deployed each release.
    const s = await json('status', 'itest', '--limit', 'web1');
    expect(s.j.hosts[0].release).toMatchObject({ live: v1, by: ME, via: 'rollback' });
    const rel = await json('releases', 'itest');
    expect(rel.j.hosts[0].releases.every((r: any) => r.by === ME)).toBe(true);
  });
});
