// keel exec, logs, status, ssh, history: bad input stops with exit 1 and says what to fix,
// before any host is reached (the hosts of these inventories do not exist).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runKeel } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'keel-ops-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, 'inventories'));
writeFileSync(
  join(root, 'inventories', 'app.yaml'),
  `vars: {app_module: "x.wsgi:application", deploy_tasks: {initdata: "python -m tools.initdata"}, deploy_backup: false}
hosts:
  web1: {address: 192.0.2.1, groups: [web]}
  db1: {address: 192.0.2.2, groups: [db]}
groups:
  web: {roles: [base, app, nginx, deploy]}
  db: {roles: [base]}
`,
);
writeFileSync(join(root, 'inventories', 'plain.yaml'), 'hosts:\n  web1: {address: 192.0.2.1, roles: [base]}\n');
const keel = (...args: string[]) => runKeel(args, { root });

describe('keel exec, bad input', () => {
  it('a command and --task, or neither, or -i with JSON', async () => {
    for (const [args, message] of [
      [['--task', 'initdata', '--', 'ls'], '--task initdata and a command (ls) both say what to run: give one of them'],
      [[], 'nothing to run: keel exec <env> -- <command...>, or --task <name>'],
      [['-i', '--output', 'json', '--', 'ls'], '-i (a terminal) and --output json do not go together'],
      [['--all', '--limit', 'web1', '--', 'ls'], '--all and --limit choose hosts both: give one of them'],
    ] as const) {
      const r = await keel('exec', 'app', ...args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(message);
    }
  });

  it('an unknown task names those there are; --limit without a deploy host says which hosts run the app', async () => {
    const task = await keel('exec', 'app', '--task', 'initdat');
    expect(task.code).toBe(1);
    expect(task.stderr).toContain('no task "initdat" in deploy_tasks (did you mean "initdata"?); tasks: initdata');
    const db = await keel('exec', 'app', '--limit', 'db', '--', 'ls');
    expect(db.code).toBe(1);
    expect(db.stderr).toContain('--limit db selects no host that runs the app (role deploy: web1)');
  });

  it('an environment without role deploy has no live release', async () => {
    const r = await keel('exec', 'plain', '--', 'ls');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('keel exec works in the live release, and no host of plain has the role "deploy"');
  });
});

describe('keel logs and ssh, bad input', () => {
  it('--since that is not a time, -f with JSON, a log name that is not there', async () => {
    const since = await keel('logs', 'app', '--since', 'yesterday');
    expect(since.code).toBe(1);
    expect(since.stderr).toContain('--since takes 30s, 10m, 2h, 1d or a date and time, got "yesterday"');
    const json = await keel('logs', 'app', '-f', '--output', 'json');
    expect(json.code).toBe(1);
    expect(json.stderr).toContain('--follow prints lines as they come: it does not go with --output json');
    const name = await keel('logs', 'app', 'ngnix');
    expect(name.code).toBe(1);
    expect(name.stderr).toContain('no log called "ngnix" (did you mean "nginx"?) on web1, db1; there are: app, nginx');
  });

  it('keel ssh to a host that is not there', async () => {
    const r = await keel('ssh', 'app', 'web2');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no host "web2" in app (did you mean "web1"?); hosts: web1, db1');
  });
});
