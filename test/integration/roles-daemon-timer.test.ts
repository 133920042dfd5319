// Roles daemon and timer on a real systemd target, several instances on one host (feature:
// role instances): two daemons (one under systemd, one under supervisor) and a timer running
// the app's code from app_dir with app_venv's python and the app's env file. Applied twice
// (0 changed), then: the daemons run and log, a killed one comes back, the deploy hooks
// restart and check them, a change restarts only its own daemon, the timer is listed and
// fires, and daemon_state: absent removes one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { sh, shExec, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, provisionItest as provision } from '../helpers/cli.js';
import { tempProject, writeInventory as writeTargetInventory, writeRole } from '../helpers/project.js';
import { until } from '../helpers/wait.js';

const DAEMON_PY = `import os, sys, time

name = sys.argv[1]
print("%s started pid=%d greeting=%s python=%s" % (name, os.getpid(), os.environ.get("GREETING", "-"), sys.executable), flush=True)
while True:
    time.sleep(1)
    print("%s tick" % name, flush=True)
`;

/** Test-only role: the app's code at app_dir (= app_root/current), a venv, an env file. */
const ITCODE_ROLE = `description: test only - a tiny app for the daemons and the timer
uses: [app_user, app_group, app_root, app_dir, app_venv, app_env_file]
resources:
  - package: {name: [python3, python3-venv]}
  - directory: {path: "{{app_dir}}", owner: "{{app_user}}", group: "{{app_group}}", mode: "0750"}
  - file: {path: "{{app_dir}}/daemon.py", source: daemon.py, owner: "{{app_user}}", group: "{{app_group}}", mode: "0644"}
  - file: {path: "{{app_env_file}}", content: "GREETING='hello from env'\\n", owner: "{{app_user}}", group: "{{app_group}}", mode: "0600"}
  - command:
      run: "python3 -m venv --system-site-packages {{quote app_venv}}"
      user: "{{app_user}}"
      creates: "{{app_venv}}/bin/python"
`;

const ROOT = '/home/acme/webapp';
let target: TestTarget;
let root: string;

function writeInventory(instances: unknown[]): void {
  writeTargetInventory(root, target, { host: 'w1', roles: ['base', 'itcode', ...instances], vars: { app_user: 'acme', app_name: 'aq' } });
}

const recalc = (command = 'python -u daemon.py recalc') => ({ role: 'daemon', name: 'recalc', vars: { daemon_command: command } });
const notify = (extra: Record<string, unknown> = {}) => ({
  role: 'daemon',
  name: 'notify',
  vars: { daemon_command: 'python -u daemon.py notify', daemon_process_manager: 'supervisor', ...extra },
});
const tick = {
  role: 'timer',
  name: 'tick',
  vars: { timer_command: "python -c \"import os; print('tick', os.environ['GREETING'])\"", timer_on_calendar: '', timer_every: '2s' },
};

const code = async (script: string) => (await shExec(target, script)).code;
const systemdPid = async () => (await sh(target, 'systemctl show -p MainPID --value aq-recalc.service')).trim();
const supervisorPid = async () => (await sh(target, 'supervisorctl pid aq-notify')).trim();

beforeAll(async () => {
  target = await startTarget({ name: 'daemons' });
  root = tempProject('roles-daemon');
  writeRole(root, 'itcode', ITCODE_ROLE, { 'files/daemon.py': DAEMON_PY });
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('roles daemon and timer on a real target', () => {
  it('two daemons (systemd, supervisor) and a timer as instances of their roles; a second run changes nothing', async () => {
    writeInventory([recalc(), notify(), tick]);
    const first = await provision(root, 'daemons+timer (1st run)');
    expect(first.changed).toBeGreaterThan(0);
    // A fresh start covers the restart its unit file notified: no handler ran.
    expect(changedIds(first).filter((id) => id.startsWith('handler/'))).toEqual([]);
    const second = await provision(root, 'daemons+timer (2nd run)');
    expect(second.changed, JSON.stringify(changedIds(second))).toBe(0);

    expect(await sh(target, 'systemctl is-active aq-recalc.service')).toBe('active\n');
    expect(await sh(target, 'supervisorctl status aq-notify')).toMatch(/RUNNING/);
    // The app's code from app_dir, app_venv's python, the env file; output in logs/<name>/.
    await until(
      'both daemons log',
      async () => (await code(`grep -q 'recalc tick' ${ROOT}/logs/recalc/recalc.log && grep -q 'notify tick' ${ROOT}/logs/notify/notify.log`)) === 0,
    );
    expect(await sh(target, `head -n 1 ${ROOT}/logs/recalc/recalc.log`)).toMatch(
      new RegExp(`^recalc started pid=\\d+ greeting=hello from env python=${ROOT}/current/.venv/bin/python`),
    );
    expect(await sh(target, `head -n 1 ${ROOT}/logs/notify/notify.log`)).toMatch(/^notify started .*greeting=hello from env/);
    expect(await sh(target, `ps -o user= -p "$(systemctl show -p MainPID --value aq-recalc.service)"`)).toBe('acme\n');
    // Deploy hooks (docs/layout.md), root-owned.
    expect(
      await sh(target, 'cd /etc/keel/apps/aq && stat -c "%n %U %a" reload.d/daemon-recalc check.d/daemon-recalc reload.d/daemon-notify check.d/daemon-notify'),
    ).toBe('reload.d/daemon-recalc root 755\ncheck.d/daemon-recalc root 755\nreload.d/daemon-notify root 755\ncheck.d/daemon-notify root 755\n');
    expect(await code('/etc/keel/apps/aq/check.d/daemon-recalc && /etc/keel/apps/aq/check.d/daemon-notify')).toBe(0);
  });

  it('a supervisord slow to start (a busy host): its start returns once supervisorctl gets an answer', async () => {
    // supervisord held 3 s before it runs, as a loaded machine holds it: without keel's drop-in
    // (host/supervisor-ready.conf) the start returns at the fork and supervisorctl fails (exit 7).
    const slow = '/etc/systemd/system/supervisor.service.d/zz-test-slow.conf';
    const start = 'ExecStart=/bin/sh -c "sleep 3; exec /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf"';
    await sh(target, `printf '%s\\n' '[Service]' 'ExecStart=' '${start}' > ${slow} && systemctl daemon-reload`);
    try {
      const started = Date.now();
      const r = await shExec(target, 'systemctl restart supervisor && supervisorctl pid');
      expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
      expect(r, 'supervisorctl right after the start').toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\n$/) });
    } finally {
      await sh(target, `rm -f ${slow} && systemctl daemon-reload && systemctl restart supervisor`);
    }
    expect(await code('/etc/keel/apps/aq/check.d/daemon-notify wait 60')).toBe(0);
    const again = await provision(root, 'daemons after supervisor restarts');
    expect(again.changed, JSON.stringify(changedIds(again))).toBe(0);
  });

  // keel-service asks supervisord over its socket (python3), and supervisorctl only when that
  // cannot answer. Each way alone, with the other broken on PATH: the same verdicts and lines.
  it('keel-service says the same with python3 asking supervisord and with supervisorctl', async () => {
    const broken = ['/tmp/no-py/python3', '/tmp/no-ctl/supervisorctl'];
    await sh(target, `mkdir -p /tmp/no-py /tmp/no-ctl && for f in ${broken.join(' ')}; do printf '#!/bin/sh\\nexit 127\\n' > $f; chmod +x $f; done`);
    const ask = async (args: string) => {
      const both = [];
      for (const dir of ['/tmp/no-ctl', '/tmp/no-py']) {
        const r = await shExec(target, `PATH=${dir}:$PATH /usr/local/lib/keel/keel-service check ${args}`);
        both.push({ code: r.code, said: r.stdout.replace(/\d+ s of/g, 'N s of').replace(/ {2,}/g, ' ') });
      }
      expect(both[0], `${args}: socket, then supervisorctl`).toEqual(both[1]);
      return both[0]!;
    };
    expect(await ask('supervisor aq-notify')).toEqual({ code: 0, said: '' });
    expect(await ask('supervisor aq-notify:*')).toEqual({ code: 0, said: '' });
    expect(await ask('--up-for 100000 supervisor aq-notify')).toEqual({ code: 1, said: 'aq-notify: up for N s of 100000 s\n' });
    expect(await ask('supervisor nope')).toEqual({ code: 2, said: 'nope: ERROR (supervisorctl status: nope: ERROR (no such process))\n' });
    expect(await ask('supervisor nope:*')).toEqual({ code: 2, said: 'nope: ERROR (supervisorctl status: nope: ERROR (no such group))\n' });
    // `status` prints supervisorctl status's lines, the same both ways (the rq hooks read them).
    const status = async (dir: string) =>
      (await shExec(target, `PATH=${dir}:$PATH /usr/local/lib/keel/keel-service status supervisor aq-notify 'nope:*'`)).stdout
        .replace(/uptime [\d:]+/, 'uptime T')
        .replace(/ {2,}/g, ' ');
    expect(await status('/tmp/no-ctl')).toBe(await status('/tmp/no-py'));
    expect(await status('/tmp/no-py')).toMatch(/^nope: ERROR \(no such group\)\naq-notify RUNNING pid \d+, uptime T\n$/);
    await sh(target, 'supervisorctl stop aq-notify');
    expect((await ask('supervisor aq-notify')).said).toMatch(/^aq-notify: STOPPED \(supervisorctl status: aq-notify STOPPED /);
    // `start` starts it either way (over the socket without waiting; supervisorctl start waits),
    // says what cannot be started, and a started one is no error.
    const start = (dir: string, name: string) => shExec(target, `PATH=${dir}:$PATH /usr/local/lib/keel/keel-service start supervisor ${name}`);
    expect((await start('/tmp/no-ctl', 'aq-notify')).code).toBe(0);
    expect(await code('/etc/keel/apps/aq/check.d/daemon-notify wait 60')).toBe(0);
    expect((await start('/tmp/no-ctl', 'aq-notify')).code).toBe(0);
    const bad = await start('/tmp/no-ctl', "'nope:*'");
    expect([bad.code, bad.stdout]).toEqual([2, 'nope:*: ERROR (BAD_NAME: nope)\n']);
    await sh(target, 'supervisorctl stop aq-notify');
    expect((await start('/tmp/no-py', 'aq-notify')).code).toBe(0);
    expect(await code('/etc/keel/apps/aq/check.d/daemon-notify wait 60')).toBe(0);
  });

  it('a killed daemon comes back; the reload hook restarts it; the check hook sees it stopped', async () => {
    const pid = await systemdPid();
    await sh(target, `kill -9 ${pid}`);
    await until('systemd restarts recalc', async () => {
      const p = await systemdPid();
      return p !== '0' && p !== pid && (await code('systemctl is-active --quiet aq-recalc.service')) === 0;
    });
    const spid = await supervisorPid();
    await sh(target, `kill -9 ${spid}`);
    await until('supervisor restarts notify', async () => {
      const p = await supervisorPid();
      return /^\d+$/.test(p) && p !== '0' && p !== spid;
    });

    for (const [hook, pidOf] of [
      ['daemon-recalc', systemdPid],
      ['daemon-notify', supervisorPid],
    ] as const) {
      const before = await pidOf();
      await sh(target, `/etc/keel/apps/aq/reload.d/${hook}`);
      expect(await pidOf()).not.toBe(before);
      // The reload hook restarts; the check hook waits until it counts as started.
      expect(await code(`/etc/keel/apps/aq/check.d/${hook} wait 60`)).toBe(0);
    }
    await sh(target, 'systemctl stop aq-recalc.service');
    expect(await code('/etc/keel/apps/aq/check.d/daemon-recalc')).not.toBe(0);
    // keel starts it again (and only that).
    const r = await provision(root, 'daemons after a stop');
    expect(changedIds(r)).toEqual([expect.stringMatching(/^daemon\[recalc\]\/command:\/etc\/keel\/apps\/aq\/reload\.d\/daemon-recalc/)]);
  });

  it('a change to one daemon restarts that daemon only', async () => {
    const [r0, n0] = [await systemdPid(), await supervisorPid()];
    writeInventory([recalc('python -u daemon.py recalc --fast'), notify(), tick]);
    const r = await provision(root, 'recalc command changed');
    expect(changedIds(r)).toEqual(['daemon[recalc]/template:/home/acme/webapp/bin/aq-recalc', 'handler/daemon[recalc]:restart']);
    expect(await systemdPid()).not.toBe(r0);
    expect(await supervisorPid()).toBe(n0);
  });

  // A daemon that dies at start is restarted by its manager forever: `is-active` catches it
  // between two restarts. It counts as started only after daemon_min_uptime seconds up with no
  // restart, so the provision fails, saying so, under both managers (and fast: no timeout).
  it('a daemon that crashes at start fails the provision, under systemd and supervisor', async () => {
    const crash = (pm: string) => ({
      role: 'daemon',
      name: `crash-${pm}`,
      vars: { daemon_command: 'python -c "import sys; sys.exit(\'boom at start\')"', daemon_process_manager: pm },
    });
    writeInventory([recalc('python -u daemon.py recalc --fast'), notify(), tick, crash('systemd'), crash('supervisor')]);
    const r = await provision(root, 'crashing daemons', { expectCode: 2 });
    const failed = r.hosts[0]!.resources.filter((x: any) => x.status === 'failed');
    expect(failed.map((x: any) => x.id)).toEqual([expect.stringMatching(/^daemon\[crash-systemd\]\/command:/)]);
    expect(failed[0]!.output).toMatch(/aq-crash-systemd\.service: .*crash loop/);
    // The supervisor one is never reached (the host's run stops at its first failure): alone, it fails too.
    writeInventory([recalc('python -u daemon.py recalc --fast'), notify(), tick, crash('supervisor')]);
    const s = await provision(root, 'crashing supervisor daemon', { expectCode: 2 });
    const sf = s.hosts[0]!.resources.filter((x: any) => x.status === 'failed');
    expect(sf.map((x: any) => x.id)).toEqual([expect.stringMatching(/^daemon\[crash-supervisor\]\/command:/)]);
    expect(sf[0]!.output).toMatch(/aq-crash-supervisor: (BACKOFF|FATAL)/);
    writeInventory([
      recalc('python -u daemon.py recalc --fast'),
      notify(),
      tick,
      { ...crash('systemd'), vars: { ...crash('systemd').vars, daemon_state: 'absent' } },
      { ...crash('supervisor'), vars: { ...crash('supervisor').vars, daemon_state: 'absent' } },
    ]);
    await provision(root, 'crashing daemons removed');
    expect(await code('systemctl is-active --quiet aq-crash-systemd.service')).not.toBe(0);
  });

  it('the timer is listed and fires, running the app code with its env', async () => {
    expect(await sh(target, 'systemctl list-timers --all --no-pager aq-tick.timer')).toMatch(/aq-tick\.timer\s+aq-tick\.service/);
    await until(
      'the timer ran the job twice',
      async () => Number((await sh(target, `grep -c '^tick hello from env$' ${ROOT}/logs/tick/tick.log || true`)).trim()) >= 2,
      { ms: 30_000 },
    );
    await sh(target, 'systemctl start aq-tick.service');
    expect(await sh(target, 'systemctl show -p Result --value aq-tick.service')).toBe('success\n');
  });

  it('daemon_state: absent stops it and removes what the role installed; the other stays', async () => {
    writeInventory([
      recalc('python -u daemon.py recalc --fast'),
      notify({ daemon_state: 'absent' }),
      { ...tick, vars: { ...tick.vars, timer_state: 'absent' } },
    ]);
    await provision(root, 'notify and tick absent');
    expect(
      await code(
        'test -e /etc/supervisor/conf.d/aq-notify.conf || test -e /etc/keel/apps/aq/reload.d/daemon-notify || ' +
          'test -e /etc/systemd/system/aq-tick.timer || test -e /etc/logrotate.d/keel-aq-notify',
      ),
    ).not.toBe(0);
    expect(await sh(target, 'supervisorctl status aq-notify 2>&1 || true')).toMatch(/no such process/i);
    expect(await code('pgrep -f "daemon[.]py notify"')).not.toBe(0);
    expect(await sh(target, 'systemctl list-timers --all --no-pager')).not.toMatch(/aq-tick/);
    expect(await sh(target, 'systemctl is-active aq-recalc.service')).toBe('active\n');
    expect((await provision(root, 'absent, again')).changed).toBe(0);
    // Then it can leave the inventory.
    writeInventory([recalc('python -u daemon.py recalc --fast')]);
    expect((await provision(root, 'notify gone from the inventory')).changed).toBe(0);
  });
});
