// Live progress as plain lines (a pipe, a CI log), the heartbeat of a long step, the terminal's
// line per host, the deploy's steps as they end, and the run log written as events happen.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plainProgress } from '../../src/report/progress.js';
import { hostTitle } from '../../src/report/progress-tty.js';
import { oneLine } from '../../src/report/one-line.js';
import { DeploySteps } from '../../src/report/deploy-steps.js';
import { RunLog } from '../../src/report/log.js';
import { Redactor } from '../../src/report/redact.js';
import type { Output } from '../../src/report/output.js';

function output(redactor = new Redactor()): Output & { lines: string[] } {
  const lines: string[] = [];
  return { redactor, lines, line: (t) => lines.push(redactor.mask(t)), warn: () => undefined, json: () => undefined, isTTY: false };
}

afterEach(() => vi.useRealTimers());

const HEREDOC = `runuser -u postgres -- sh -c 'cd / && psql -X -q' <<'SQL'
  \\set pw \`cat /etc/postgresql/keel/app.password\`
  ALTER ROLE "app" WITH LOGIN PASSWORD :'pw';
  SQL
`;

describe('plain progress', () => {
  it('prints a multi-line command (a handler heredoc) on one line', () => {
    const out = output();
    const p = plainProgress(out, false);
    p.result('db1', { id: 'handler/postgres:set password', status: 'changed', reason: `ran: ${HEREDOC}` });
    expect(out.lines).toEqual([
      "db1  changed      handler/postgres:set password  ran: runuser -u postgres -- sh -c 'cd / && psql -X -q' <<'SQL' ⏎ " +
        '\\set pw `cat /etc/postgresql/keel/app.password` ⏎ ALTER ROLE "app" WITH LOGIN PASSWORD :\'pw\'; ⏎ SQL',
    ]);
  });

  it('a step that runs long gets a line every 15 s naming it, until it ends', async () => {
    vi.useFakeTimers();
    const out = output();
    const p = plainProgress(out, false);
    p.step('web1', { state: 'running', id: 'nginx/package:nginx', done: 3, total: 9 });
    p.step('web2', { state: 'running', id: 'nginx/package:nginx', done: 3, total: 9 });
    vi.advanceTimersByTime(14_999);
    expect(out.lines).toEqual([]);
    vi.advanceTimersByTime(1);
    p.step('web2', { state: 'ended', id: 'nginx/package:nginx', done: 4, total: 9 });
    vi.advanceTimersByTime(30_000);
    expect(out.lines).toEqual([
      'web1  still running nginx/package:nginx (15 s)',
      'web2  still running nginx/package:nginx (15 s)',
      'web1  still running nginx/package:nginx (30 s)',
      'web1  still running nginx/package:nginx (45 s)',
    ]);
    // The next step has its own clock; a host that is done is quiet.
    p.step('web1', { state: 'running', id: 'app/command:make', done: 4, total: 9 });
    vi.advanceTimersByTime(15_000);
    p.hostDone({ name: 'web1', ok: 9, changed: 0, failed: 0, unreachable: 0, resources: [], roundTrips: 2, durationMs: 1 });
    vi.advanceTimersByTime(60_000);
    expect(out.lines.slice(4)).toEqual(['web1  still running app/command:make (15 s)']);
    await p.close();
  });

  it("prints a step's output lines with the host, secrets masked, control characters dropped", () => {
    const out = output(new Redactor().add(['hunter2']));
    const p = plainProgress(out, false);
    p.step('web1', { state: 'output', id: 'app/command:x', line: 'password hunter2\u001b[2J' });
    expect(out.lines).toEqual(['web1  | password ******[2J']);
  });
});

describe('terminal progress', () => {
  it('shows per host the step running, for how long, and how many of its resources are done', () => {
    const statuses = new Map([
      ['a', 'ok'],
      ['b', 'changed'],
    ]);
    const line = { statuses, phase: 'apply', step: { id: 'nginx/package:nginx', since: 1_000 }, done: { n: 12, of: 46 } };
    expect(hostTitle('web1', line, false, 35_500)).toBe('web1: apply 12/46 nginx/package:nginx 34 s  ok=1 changed=1 failed=0');
    expect(hostTitle('web1', { ...line, step: { id: `psql <<'SQL'\nALTER ROLE x;\nSQL`, since: 0 } }, false, 0)).toBe(
      "web1: apply 12/46 psql <<'SQL' ⏎ ALTER ROLE x; ⏎ SQL 0 s  ok=1 changed=1 failed=0",
    );
  });
});

describe('oneLine', () => {
  it('joins lines, drops control characters, and shortens to the limit', () => {
    expect(oneLine('  a\r\n\tb \n c  ')).toBe('a ⏎ b ⏎ c');
    expect(oneLine('x\u0007y\u009bz')).toBe('xyz');
    expect(oneLine('abcdef', 4)).toBe('abc…');
  });
});

describe('Redactor', () => {
  it('masks each line of a multi-line secret, as output streamed line by line holds it', () => {
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACBkZXBsb3k=\n-----END OPENSSH PRIVATE KEY-----\n';
    const r = new Redactor().add([key]);
    expect(r.mask(key)).toBe('******');
    expect(key.split('\n').map((l) => r.mask(l))).toEqual(['******', '******', '******', '******', '']);
  });
});

describe('deploy steps, live', () => {
  function deploySteps(verbose: boolean) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-deploy-steps-'));
    const redactor = new Redactor();
    const log = new RunLog(dir, 'deploy', 'test', redactor);
    const out = output(redactor);
    const printed: string[] = [];
    const steps = new DeploySteps({ log, out, verbose, print: (h, st) => printed.push(`${h} ${st.phase}/${st.name} ${st.status}`) });
    const logged = () => {
      log.flush();
      return readFileSync(join(dir, '.keel', 'logs', readdirSync(join(dir, '.keel', 'logs'))[0]!), 'utf8');
    };
    return { steps, out, printed, logged, done: () => (log.close(), steps.close(), rmSync(dir, { recursive: true, force: true })) };
  }

  it('prints and logs each step when it ends, once; steps the hosts never reported come from the report', () => {
    const d = deploySteps(false);
    d.steps.onEvent('web1', 'build', { type: 'begin', key: 'code' });
    expect(d.printed).toEqual([]);
    d.steps.onEvent('web1', 'build', { type: 'end', step: { key: 'code', status: 'changed', output: 'unpacked\n', durationMs: 12 } });
    expect(d.printed).toEqual(['web1 build/code ok']);
    expect(d.logged()).toMatch(/"event":"step","host":"web1","phase":"build","name":"code","status":"ok","durationMs":12,"output":"unpacked\\n"/);
    // The deploy's report of the phase: what was shown live is not shown again.
    d.steps.recorded('web1', { phase: 'build', name: 'code', status: 'ok', durationMs: 12, output: 'unpacked\n' });
    d.steps.recorded('web1', { phase: 'build', name: 'build-1', status: 'not run' });
    expect(d.printed).toEqual(['web1 build/code ok', 'web1 build/build-1 not run']);
    // The same phase later (maintenance on, then off) is shown again.
    d.steps.onEvent('web1', 'build', { type: 'end', step: { key: 'code', status: 'failed', code: 1, output: '' } });
    d.steps.recorded('web1', { phase: 'build', name: 'code', status: 'failed', code: 1, output: '' });
    expect(d.printed).toEqual(['web1 build/code ok', 'web1 build/build-1 not run', 'web1 build/code failed']);
    expect(d.logged().match(/"event":"step"/g)).toHaveLength(3);
    d.done();
  });

  it('-v: output lines as they come, prefixed by the host and the step', () => {
    const d = deploySteps(true);
    expect(d.steps.output).toBe(true);
    d.steps.onEvent('web1', 'migrate', { type: 'begin', key: 'migrate' });
    d.steps.onEvent('web1', 'migrate', { type: 'output', key: 'migrate', line: '  Applying app.0002_x... OK' });
    expect(d.out.lines).toEqual(['web1  migrate/migrate |   Applying app.0002_x... OK']);
    expect(deploySteps(false).steps.output).toBe(false);
    d.done();
  });
});

describe('run log', () => {
  it('writes each resource event as it happens, with its time (one write per burst)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-log-'));
    const log = new RunLog(dir, 'provision', 'test', new Redactor());
    const read = () => readFileSync(log.file, 'utf8');
    log.resource('web1', { id: 'a', status: 'ok', reason: 'fine' });
    log.resource('web1', { id: 'b', status: 'ok', reason: 'fine' });
    expect(read()).toBe('');
    await new Promise((r) => setImmediate(r));
    const lines = read().trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).id)).toEqual(['a', 'b']);
    expect(JSON.parse(lines[0]!).time).toMatch(/^\d{4}-\d\d-\d\dT/);
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a resource event is the line write() makes of it, masked and without the diff, also for a result many hosts share', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-log-'));
    const log = new RunLog(dir, 'provision', 'test', new Redactor().add(['hunter2-secret']));
    const shared = {
      id: 'app/file:/etc/app.ini',
      status: 'changed' as const,
      reason: 'content "q\\" hunter2-secret',
      diff: { path: '/etc/app.ini', before: 'a', after: 'b' },
    };
    log.resource('web1', shared);
    log.resource('hunter2-secret', shared);
    log.write('resource', { host: 'web1', ...shared, diff: undefined });
    log.flush();
    const lines = readFileSync(log.file, 'utf8').trim().split('\n');
    const drop = (l: string) => l.replace(/"time":"[^"]*",/, '');
    expect(drop(lines[0]!)).toBe(drop(lines[2]!));
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'resource', host: 'web1', id: shared.id, status: 'changed', reason: 'content "q\\" ******' });
    expect(JSON.parse(lines[1]!).host).toBe('******');
    expect(lines.join('\n')).not.toContain('hunter2');
    expect(lines[0]).not.toContain('diff');
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
