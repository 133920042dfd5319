// keel logs' host script (src/ops/logs-script.ts) in this machine's real sh and awk (mawk, as on
// Debian hosts) over log files in the formats the roles write, and its time arithmetic.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { logsScript, type LogQuery } from '../../src/ops/logs-script.js';
import { parseSince, toUtc } from '../../src/ops/logs.js';
import { logSelection } from '../../src/ops/log-sources.js';
import type { AppFacts } from '../../src/ops/hosts.js';

const logs = mkdtempSync(join(tmpdir(), 'keel-logs-'));
afterAll(() => rmSync(logs, { recursive: true, force: true }));

function file(path: string, text: string, mtime?: Date): void {
  mkdirSync(join(logs, path, '..'), { recursive: true });
  writeFileSync(join(logs, path), text);
  if (mtime) utimesSync(join(logs, path), mtime, mtime);
}

file(
  'gunicorn/error.log',
  '[2026-12-01 10:00:01 +0000] [7] [INFO] Booting worker\n' +
    '[2026-12-01 10:00:05 +0000] [7] [ERROR] Exception in worker\n' +
    'Traceback (most recent call last):\n' +
    '  File "x.py", line 1\n' +
    "ValueError: it's $(broken)\n" +
    '[2026-12-01 10:00:09 +0000] [7] [INFO] Worker exiting\n',
);
file('nginx/access.log', '1.2.3.4 - - [01/Dec/2026:10:00:03 +0000] "GET / HTTP/1.1" 200 5\n1.2.3.4 - - [01/Dec/2026:10:00:07 +0000] "GET /x HTTP/1.1" 404 5\n');
file('nginx/error.log', '2026/12/01 10:00:04 [error] 12#12: *1 connect() failed\n');
file('rq/default-1.log', '10:00:02 Worker started\n10:00:08 default: job done\n', new Date('2026-12-01T12:00:00Z'));
file('tick/tick.log', 'no time here\nnor here\n', new Date('2026-12-01T10:00:06Z'));

/** Run the script (no journal), the H lines as [time, source, line]. */
function read(q: Partial<LogQuery>, dirs = ['*']): string[][] {
  const script = logsScript(logs, { dirs, units: [] }, { follow: false, ...q }, '@@n').text;
  const r = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  expect(r.stderr).toBe('');
  expect(r.stdout.split('\n')).toContain('@@n L');
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('@@n H '))
    .map((l) => l.slice(6).split('\t'))
    .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
}

describe('logs script', () => {
  it('reads each format’s time; a traceback takes the time of the line it follows; a file without times takes its own', () => {
    const lines = read({});
    const at = (text: string) => lines.find((l) => l[2]!.includes(text))?.slice(0, 2);
    expect(at('Booting')).toEqual(['20261201100001', 'gunicorn/error']);
    expect(at('GET / ')).toEqual(['20261201100003', 'nginx/access']);
    expect(at('connect() failed')).toEqual(['20261201100004', 'nginx/error']);
    expect(at('Worker started')).toEqual(['20261201100002', 'rq/default-1']);
    expect(at('Traceback')).toEqual(['20261201100005', 'gunicorn/error']);
    expect(at("ValueError: it's $(broken)")).toEqual(['20261201100005', 'gunicorn/error']);
    expect(at('no time here')).toEqual(['20261201100006', 'tick/tick']);
    expect(lines).toHaveLength(13);
  });

  it('--since keeps lines at or after it; --grep those that match; --lines the newest of each source', () => {
    const since = Date.parse('2026-12-01T10:00:07Z') / 1000;
    expect(read({ since }).map((l) => l.slice(0, 2))).toEqual([
      ['20261201100007', 'nginx/access'],
      ['20261201100008', 'rq/default-1'],
      ['20261201100009', 'gunicorn/error'],
    ]);
    expect(read({ grep: 'ERROR|404' }).map((l) => l[2])).toEqual([
      '[2026-12-01 10:00:05 +0000] [7] [ERROR] Exception in worker',
      expect.stringContaining('404'),
    ]);
    expect(read({ lines: 1 }, ['nginx']).map((l) => l[2])).toEqual([expect.stringContaining('connect() failed'), expect.stringContaining('GET /x')]);
    expect(read({ lines: 0 })).toEqual([]);
  });
});

describe('times', () => {
  it('a host time with its UTC offset becomes UTC; --since takes durations and dates', () => {
    expect(toUtc('20261201100000', 60)).toBe('2026-12-01T09:00:00Z');
    expect(toUtc('20261201100000', -330)).toBe('2026-12-01T15:30:00Z');
    expect(toUtc('garbage', 0)).toBe('');
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(parseSince('10m', now)).toBe(now / 1000 - 600);
    expect(parseSince('2h', now)).toBe(now / 1000 - 7200);
    expect(parseSince('2026-12-01T09:00:00Z', now)).toBe(now / 1000 - 3600);
    expect(parseSince('yesterday-ish', now)).toBeUndefined();
  });
});

describe('log sources', () => {
  const facts: AppFacts = {
    name: 'web1',
    appName: 'sample',
    appUser: 'sample',
    appGroup: 'sample',
    appRoot: '/srv/app',
    envFile: '/srv/app/config/app.env',
    python: '/usr/bin/python3',
    appServer: 'uvicorn',
    appServiceName: 'sample',
    processManager: 'systemd',
    web: true,
    maintenanceFile: '/srv/app/maintenance_on.html',
    deploys: true,
    daemons: [{ name: 'recalc', unit: 'sample-recalc', manager: 'systemd' }],
    timers: [{ name: 'cleanup', unit: 'sample-cleanup', manager: 'systemd' }],
    rq: [{ name: 'default', unit: 'sample-rq-default', manager: 'supervisor' }],
  };
  it('each name reads its role’s directory and units', () => {
    expect(logSelection(facts, 'app')).toEqual({ dirs: ['uvicorn'], units: ['sample@*.service'] });
    expect(logSelection(facts, 'worker')).toEqual({ dirs: ['rq'], units: [] });
    expect(logSelection(facts, 'nginx')).toEqual({ dirs: ['nginx'], units: [] });
    expect(logSelection(facts, 'recalc')).toEqual({ dirs: ['recalc'], units: ['sample-recalc.service'] });
    expect(logSelection(facts, 'cleanup')).toEqual({ dirs: ['cleanup'], units: ['sample-cleanup.service', 'sample-cleanup.timer'] });
    expect(logSelection(facts, undefined)).toEqual({
      dirs: ['*'],
      units: ['sample@*.service', 'sample-recalc.service', 'sample-cleanup.service', 'sample-cleanup.timer'],
    });
    expect(logSelection({ ...facts, appServer: 'none' }, 'app')).toBeUndefined();
    expect(logSelection(facts, 'nothing')).toBeUndefined();
  });
});
