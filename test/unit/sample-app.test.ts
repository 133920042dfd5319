// examples/sample-app: make-repo.sh gives stable shas and the branches the deploy tests use;
// where Debian's python3-django is installed, the app itself is smoke-tested on SQLite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sampleDir = fileURLToPath(new URL('../../examples/sample-app', import.meta.url));
const makeRepo = join(sampleDir, 'make-repo.sh');
const branches = ['main', 'v2-bad-migration', 'v3-bad-health', 'v4', 'v4-code-only', 'v5-requirements', 'v6-bad-daemon'];

let tmp: string;
let repo: string;
let firstOutput: string;

const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
const changed = (from: string, to: string) => git('diff', '--name-only', from, to).trim().split('\n').sort();

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'keel-sample-app-'));
  repo = join(tmp, 'repo');
  firstOutput = execFileSync('sh', [makeRepo, repo], { encoding: 'utf8' });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('make-repo.sh', () => {
  it('prints one line per branch and gives the same shas on every run', () => {
    const lines = firstOutput.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(branches);
    for (const l of lines) expect(l).toMatch(/^\S+ [0-9a-f]{40}$/);
    const again = execFileSync('sh', [makeRepo, join(tmp, 'again')], {
      encoding: 'utf8',
      env: { ...process.env, HOME: tmp, GIT_AUTHOR_NAME: 'someone else', GIT_COMMITTER_DATE: '2001-01-01T00:00:00Z' },
    });
    expect(again).toBe(firstOutput);
    for (const l of lines) {
      const [b, sha] = l.split(' ');
      expect(git('rev-parse', `refs/heads/${b}`).trim()).toBe(sha);
    }
  });

  it('refuses a directory that is not empty', () => {
    const busy = join(tmp, 'busy');
    execFileSync('mkdir', ['-p', busy]);
    writeFileSync(join(busy, 'x'), 'x');
    const r = spawnSync('sh', [makeRepo, busy], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('not empty');
  });

  it('leaves a clean work tree on main and commits no build output', () => {
    expect(git('status', '--porcelain', '--ignored')).toBe('');
    expect(git('rev-parse', '--abbrev-ref', 'HEAD').trim()).toBe('main');
    const files = git('ls-files').trim().split('\n');
    expect(files).toEqual(
      expect.arrayContaining([
        'manage.py',
        'VERSION',
        'requirements.txt',
        'sample/settings.py',
        'sample/wsgi.py',
        'counter/jobs.py',
        'counter/migrations/0001_initial.py',
        'counter/static/counter/style.css',
        'locale/fr/LC_MESSAGES/django.po',
      ]),
    );
    expect(files.filter((f) => /__pycache__|\.pyc$|\.mo$|REVISION|sqlite3/.test(f))).toEqual([]);
    expect(git('ls-files', '-s', 'manage.py')).toMatch(/^100755 /);
  });

  it('writes the version each branch is known by', () => {
    const versions = Object.fromEntries(branches.map((b) => [b, git('show', `${b}:VERSION`).trim()]));
    expect(versions).toEqual({
      main: 'v1',
      'v2-bad-migration': 'v2',
      'v3-bad-health': 'v3',
      v4: 'v4',
      'v4-code-only': 'v4-code-only',
      'v5-requirements': 'v5',
      'v6-bad-daemon': 'v6',
    });
  });

  it('changes only what each scenario needs', () => {
    expect(changed('main', 'v2-bad-migration')).toEqual(['VERSION', 'counter/migrations/0002_fail_on_purpose.py']);
    expect(git('show', 'v2-bad-migration:counter/migrations/0002_fail_on_purpose.py')).toContain('RAISE EXCEPTION');
    expect(changed('main', 'v3-bad-health')).toEqual(['VERSION', 'counter/health.py']);
    expect(changed('main', 'v4')).toEqual(['VERSION', 'counter/migrations/0002_hit_user_agent.py', 'counter/models.py', 'counter/views.py']);
    expect(changed('main', 'v4-code-only')).toEqual(['VERSION', 'counter/templates/counter/index.html']);
    expect(changed('v4', 'v5-requirements')).toEqual(['VERSION', 'requirements.txt']);
    expect(git('merge-base', 'v4', 'v5-requirements').trim()).toBe(git('rev-parse', 'v4').trim());
  });

  it('keeps requirements.txt free of packages on every branch (installs offline)', () => {
    for (const b of branches) {
      const reqs = git('show', `${b}:requirements.txt`)
        .split('\n')
        .filter((l) => l.trim() && !l.trim().startsWith('#'));
      expect(reqs, b).toEqual([]);
    }
    expect(git('show', 'v4:requirements.txt')).not.toBe(git('show', 'v5-requirements:requirements.txt'));
  });
});

// Debian's python3 with python3-django 3.2 (not a pyenv or other python3 on PATH).
const python = '/usr/bin/python3';
const hasDjango = existsSync(python) && spawnSync(python, ['-c', 'import django'], { stdio: 'ignore' }).status === 0;

const hasMsgfmt = spawnSync('msgfmt', ['--version'], { stdio: 'ignore' }).status === 0;

const smoke = String.raw`
import os, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
c = Client()
pages = [c.get("/").content.decode() for _ in range(2)]
ping = c.get("/ping")
fr = c.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
import json
print(json.dumps({"pages": pages, "ping": [ping.status_code, ping.content.decode(), ping["Content-Type"]], "fr": fr}))
`;

describe.runIf(hasDjango)('the sample app on Debian python3-django (SQLite)', () => {
  const checkout = (branch: string) => {
    const work = join(tmp, `wt-${branch}`);
    if (!existsSync(work)) git('worktree', 'add', '-q', '--detach', work, branch);
    return work;
  };
  const run = (branch: string, script: string, extraEnv: Record<string, string> = {}) => {
    const work = checkout(branch);
    const env = {
      ...process.env,
      PYTHONDONTWRITEBYTECODE: '1',
      DJANGO_SETTINGS_MODULE: 'sample.settings',
      SECRET_KEY: 'test',
      DATABASE_URL: `sqlite:///${join(work, 'db.sqlite3')}`,
      STATIC_ROOT: join(work, 'static-out'),
      ...extraEnv,
    };
    return spawnSync(python, ['-'], { cwd: work, env, input: script, encoding: 'utf8' });
  };

  it('passes manage.py check and needs SECRET_KEY outside DEBUG', () => {
    const work = checkout('main');
    const base = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
    const ok = spawnSync(python, ['manage.py', 'check'], { cwd: work, env: { ...base, SECRET_KEY: 'x' }, encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const noKey = spawnSync(python, ['manage.py', 'check'], { cwd: work, env: { ...base, SECRET_KEY: '' }, encoding: 'utf8' });
    expect(noKey.status).not.toBe(0);
    expect(noKey.stderr).toContain('SECRET_KEY must be set');
    const collect = spawnSync(python, ['manage.py', 'collectstatic', '--noinput'], {
      cwd: work,
      env: { ...base, SECRET_KEY: 'x', STATIC_ROOT: join(work, 'static-out') },
      encoding: 'utf8',
    });
    expect(collect.status, collect.stderr).toBe(0);
    expect(existsSync(join(work, 'static-out', 'counter', 'style.css'))).toBe(true);
  });

  it('parses DATABASE_URL for PostgreSQL (TCP, socket, escapes) and SQLite', () => {
    const r = run(
      'main',
      String.raw`
import json
from sample.settings import parse_database_url as p
print(json.dumps([
  p("postgresql://app:p%40ss%3Aw@db.example:6543/appdb?sslmode=require"),
  p("postgres://app@/appdb?host=/var/run/postgresql"),
  p("sqlite:///tmp/x.sqlite3"),
  p("sqlite:////tmp/x.sqlite3"),
]))
`,
    );
    expect(r.status, r.stderr).toBe(0);
    const [tcp, sock, lite3, lite4] = JSON.parse(r.stdout);
    expect(tcp).toEqual({
      ENGINE: 'django.db.backends.postgresql',
      NAME: 'appdb',
      USER: 'app',
      PASSWORD: 'p@ss:w',
      HOST: 'db.example',
      PORT: '6543',
      OPTIONS: { sslmode: 'require' },
    });
    expect(sock).toMatchObject({ NAME: 'appdb', USER: 'app', PASSWORD: '', HOST: '/var/run/postgresql', PORT: '' });
    expect(lite3).toEqual({ ENGINE: 'django.db.backends.sqlite3', NAME: '/tmp/x.sqlite3' });
    expect(lite4).toEqual(lite3);
  });

  it('counts hits on /, answers pong on /ping, and shows the version', () => {
    const r = run('main', smoke);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.pages[0]).toMatch(/^version: v1$/m);
    expect(out.pages[0]).toMatch(/^revision: unknown$/m);
    expect(out.pages[0]).toMatch(/^count: 1$/m);
    expect(out.pages[1]).toMatch(/^count: 2$/m);
    expect(out.ping).toEqual([200, 'pong', 'text/plain']);
    expect(out.fr).toMatch(/^version: v1$/m);
  });

  it.runIf(hasMsgfmt)('compiles the French catalogue and serves it for Accept-Language: fr', () => {
    const work = checkout('v4-code-only');
    const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', SECRET_KEY: 'x' };
    const c = spawnSync(python, ['manage.py', 'compilemessages'], { cwd: work, env, encoding: 'utf8' });
    expect(c.status, c.stderr).toBe(0);
    expect(existsSync(join(work, 'locale', 'fr', 'LC_MESSAGES', 'django.mo'))).toBe(true);
    const out = JSON.parse(run('v4-code-only', smoke).stdout);
    expect(out.fr).toContain("Bonjour de l'application exemple de keel");
    expect(out.pages[0]).toContain('Hello from the keel sample app');
    expect(out.pages[0]).toMatch(/^change: code only$/m);
  });

  it('answers 500 on /ping on v3-bad-health, and v4 writes its new column', () => {
    const v3 = run('v3-bad-health', smoke);
    expect(v3.status, v3.stderr).toBe(0);
    const out3 = JSON.parse(v3.stdout);
    expect(out3.ping[0]).toBe(500);
    expect(out3.pages[0]).toMatch(/^version: v3$/m);
    const v4 = run('v4', smoke);
    expect(v4.status, v4.stderr).toBe(0);
    expect(JSON.parse(v4.stdout).pages[1]).toMatch(/^count: 2$/m);
  });
});
