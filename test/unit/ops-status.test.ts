// keel status's reading of a host's answer (src/ops/status-parse.ts), from answers shaped as
// the host prints them (status-script.ts), and its text for a person.
import { describe, expect, it } from 'vitest';
import type { HistoryEntry } from '../../src/deploy/history.js';
import type { AppFacts } from '../../src/ops/hosts.js';
import { parseStatus } from '../../src/ops/status-parse.js';
import { statusText } from '../../src/ops/status-text.js';

const facts: AppFacts = {
  name: 'web1',
  appName: 'sample',
  appUser: 'sample',
  appGroup: 'sample',
  appRoot: '/home/sample/webapp',
  envFile: '/home/sample/webapp/config/app.env',
  python: '/usr/bin/python3',
  appServer: 'gunicorn',
  appServiceName: 'sample',
  processManager: 'supervisor',
  web: true,
  maintenanceFile: '/home/sample/webapp/maintenance_on.html',
  deploys: true,
  daemons: [{ name: 'recalc', unit: 'sample-recalc', manager: 'systemd' }],
  timers: [{ name: 'tick', unit: 'sample-tick', manager: 'systemd' }],
  rq: [{ name: 'default', unit: 'sample-rq-default', manager: 'supervisor' }],
};

const N = '@@n';
const NOW = Date.parse('2026-12-06T03:00:00Z');
const answer = [
  `${N} R live 20261206-020908Z-0f6a08c36263`,
  `${N} R since 1796522948`,
  `${N} R sha 0f6a08c3626347a6754f274cb47dc01015be8682`,
  `${N} R branch main`,
  `${N} R by bob@ci`,
  `${N} C app 0`,
  `${N} C daemon-recalc 1`,
  `${N} S sample                                 RUNNING   pid 1190, uptime 0:50:00`,
  `${N} S sample-rq-default:sample-rq-default-1  BACKOFF   Exited too quickly (process log may have details)`,
  `${N} S otherapp                               RUNNING   pid 9, uptime 1 day, 0:00:01`,
  `${N} X sample-rq-default:sample-rq-default-1`,
  `${N} x redis.exceptions.AuthenticationError: invalid password`,
  `${N} P sample-recalc.service Id=sample-recalc.service`,
  `${N} P sample-recalc.service ActiveState=activating`,
  `${N} P sample-recalc.service SubState=auto-restart`,
  `${N} P sample-recalc.service Result=exit-code`,
  `${N} P sample-recalc.service ExecMainStatus=3`,
  `${N} P sample-recalc.service NRestarts=7`,
  `${N} P sample-recalc.service StateChangeTimestamp=@1796526000`,
  `${N} F sample-recalc.service`,
  `${N} f recalc: cannot start: CONFIG is missing`,
  `${N} P sample-tick.service ActiveState=inactive`,
  `${N} P sample-tick.service Result=success`,
  `${N} P sample-tick.timer ActiveState=active`,
  `${N} P sample-tick.timer SubState=waiting`,
  `${N} P sample-tick.timer ActiveEnterTimestamp=@1796522940`,
  `${N} P sample-tick.timer LastTriggerUSec=Sun 2026-12-06 02:59:55 UTC`,
  `${N} P sample-tick.timer NextElapseUSecRealtime=`,
  `${N} N active @1796522900`,
  `${N} M on 1796526000`,
  `${N} D /home/sample/webapp\t1048576\t24%\t/`,
  `${N} B /home/sample/webapp/backups/x.dump\t7580\t1796522934`,
  'noise from a check hook',
].join('\n');

const history: HistoryEntry[] = [
  {
    time: '2026-12-06T02:09:20.000Z',
    started: '2026-12-06T02:09:08.000Z',
    run: 'r1',
    who: 'alice@laptop',
    what: 'deploy',
    command: 'deploy dev --branch main',
    app: 'sample',
    from: '',
    to: '20261206-020908Z-0f6a08c36263',
    result: 'ok',
    durationMs: 12000,
    detail: '',
  },
];

describe('parseStatus', () => {
  const s = parseStatus(answer, N, facts, history, NOW);

  it('the live release: who made it live comes from the history (else who built it), when from the switch', () => {
    expect(s.release).toEqual({
      live: '20261206-020908Z-0f6a08c36263',
      sha: '0f6a08c3626347a6754f274cb47dc01015be8682',
      branch: 'main',
      since: '2026-12-06T02:09:08Z',
      by: 'alice@laptop',
      via: 'deploy',
    });
    expect(parseStatus(answer, N, facts, [], NOW).release?.by).toBe('bob@ci');
  });

  it("the app's processes only, each with its state, since, restarts; a failed one with its last lines", () => {
    expect(s.processes.map((p) => [p.name, p.manager, p.state, p.since, p.restarts])).toEqual([
      ['sample', 'supervisor', 'running', '2026-12-06T02:10:00Z', null],
      ['sample-rq-default:sample-rq-default-1', 'supervisor', 'failed', null, null],
      ['sample-recalc.service', 'systemd', 'failed', '2026-12-06T03:00:00Z', 7],
      ['sample-tick.timer', 'systemd', 'waiting', '2026-12-06T02:09:00Z', null],
    ]);
    expect(s.processes[1]!.lastLines).toEqual(['redis.exceptions.AuthenticationError: invalid password']);
    expect(s.processes[2]!.lastLines).toEqual(['recalc: cannot start: CONFIG is missing']);
    expect(s.processes[3]).toMatchObject({ lastRun: '2026-12-06T02:59:55Z', nextRun: null });
    expect(s.checks).toEqual([
      { name: 'app', ok: true },
      { name: 'daemon-recalc', ok: false },
    ]);
  });

  it('nginx, maintenance, disk, the newest dump', () => {
    expect(s.nginx).toEqual({ state: 'active', since: '2026-12-06T02:08:20Z' });
    expect(s.maintenance).toEqual({ on: true, since: '2026-12-06T03:00:00Z' });
    expect(s.disk).toEqual([{ path: '/home/sample/webapp', availableBytes: 1024 ** 3, usedPercent: 24, mount: '/' }]);
    expect(s.dump).toEqual({ path: '/home/sample/webapp/backups/x.dump', bytes: 7580, time: '2026-12-06T02:08:54Z' });
  });

  it('reads as text: failed processes loud, with their lines', () => {
    const text = statusText(
      [{ name: 'web1', error: null, ...s, lock: { state: 'free', holder: null }, drift: { changes: 0, resources: [], error: null }, durationMs: 1 }],
      NOW,
    ).join('\n');
    expect(text).toContain('web1: 20261206-020908Z-0f6a08c36263 (main @ 0f6a08c36263), live since 2026-12-06 02:09:08Z (51m ago) by alice@laptop (deploy)');
    expect(text).toMatch(/sample-recalc\.service\s+FAILED\s+since 2026-12-06 03:00:00Z \(0s ago\), 7 restarts/);
    expect(text).toContain('    | recalc: cannot start: CONFIG is missing');
    expect(text).toContain('checks: FAILING: daemon-recalc');
    expect(text).toContain('maintenance: ON since 2026-12-06 03:00:00Z');
    expect(text).toContain('disk: 1.0 GB free on / (24% used), for /home/sample/webapp');
    expect(text).toContain('drift: none (keel plan would change nothing)');
  });
});
