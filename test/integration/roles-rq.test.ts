// Role rq on a real systemd target with Debian's redis-server and python3-rq: a tiny job
// module at app_root/current (app_dir) with a venv made with --system-site-packages, two
// instances on one host (queue default: 2 workers and the scheduler under supervisor; queue
// mail: 1 worker under systemd). Applied twice (0 changed), then: an enqueued job runs in a
// worker, a scheduled one through the scheduler, a killed worker comes back, the reload hook
// restarts the workers and the check hook passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { sh, shExec, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, provisionItest as provision } from '../helpers/cli.js';
import { tempProject, writeInventory as writeTargetInventory, writeRole } from '../helpers/project.js';
import { until } from '../helpers/wait.js';

const JOBS_PY = `import os
import time


def record(tag):
    with open(os.path.join("/tmp/rq-jobs", tag), "w") as f:
        f.write("%d %s\\n" % (os.getpid(), os.environ.get("GREETING", "-")))
    return tag


def slow(tag, seconds):
    open(os.path.join("/tmp/rq-jobs", tag + ".started"), "w").close()
    time.sleep(seconds)
    return record(tag)
`;

// The env file of ITJOBS_ROLE (as YAML escapes).
const ITJOBS_ENV = "REDIS_URL=redis://127.0.0.1:6379/0\\nGREETING='hello from env'\\n";

/** Test-only role: Redis, the job module at app_dir, a venv, the env file with REDIS_URL. */
const ITJOBS_ROLE = `description: test only - redis-server and a tiny rq job module
uses: [app_user, app_group, app_root, app_dir, app_venv, app_env_file]
resources:
  - package: {name: [redis-server, python3, python3-venv, python3-rq]}
  - service: {name: redis-server, state: started, enabled: true}
  - directory: {path: "{{app_dir}}", owner: "{{app_user}}", group: "{{app_group}}", mode: "0750"}
  - directory: {path: /tmp/rq-jobs, owner: "{{app_user}}", mode: "0755"}
  - file: {path: "{{app_dir}}/jobs.py", source: jobs.py, owner: "{{app_user}}", group: "{{app_group}}", mode: "0644"}
  - file: {path: "{{app_env_file}}", content: "${ITJOBS_ENV}", owner: "{{app_user}}", group: "{{app_group}}", mode: "0600"}
  - command:
      run: "python3 -m venv --system-site-packages {{quote app_venv}}"
      user: "{{app_user}}"
      creates: "{{app_venv}}/bin/python"
`;

const ROOT = '/home/acme/webapp';
let target: TestTarget;
let root: string;

const DEFAULT = { role: 'rq', name: 'default', vars: { rq_workers: 2, rq_scheduler: true } };
const MAIL = { role: 'rq', name: 'mail', vars: { rq_process_manager: 'systemd' } };

function writeInventory(instances: unknown[]): void {
  writeTargetInventory(root, target, { host: 'w1', roles: ['base', 'itjobs', 'logrotate', ...instances], vars: { app_user: 'acme', app_name: 'aq' } });
}

const code = async (script: string) => (await shExec(target, script)).code;
/** Waits for the workers: up to 30 s, then fails with their logs and status. */
const rqWait = {
  ms: 30_000,
  explain: () =>
    sh(target, `tail -n 20 ${ROOT}/logs/rq/*.log 2>&1; supervisorctl status 2>&1; systemctl status --no-pager 'aq-rq-mail@*' 2>&1 | tail -20; true`),
};

/** Run `call` (Python; `q` is the queue, `jobs` the job module) from the app's venv, as the app user. */
async function onQueue(queue: string, call: string): Promise<void> {
  const py = `from datetime import timedelta; from redis import Redis; from rq import Queue; import jobs; q = Queue("${queue}", connection=Redis()); ${call}`;
  await sh(target, `cd ${ROOT}/current && runuser -u acme -- .venv/bin/python -c '${py}'`);
}
/** Enqueue jobs.record(tag): `in` seconds later if given. */
const enqueue = (queue: string, tag: string, inSeconds?: number) =>
  onQueue(queue, inSeconds === undefined ? `q.enqueue(jobs.record, "${tag}")` : `q.enqueue_in(timedelta(seconds=${inSeconds}), jobs.record, "${tag}")`);
/** Enqueue jobs.slow(tag, seconds): it marks <tag>.started, sleeps, then records the tag. */
const enqueueSlow = (queue: string, tag: string, seconds: number) => onQueue(queue, `q.enqueue(jobs.slow, "${tag}", ${seconds})`);
const ran = (tag: string) => async () => (await code(`test -s /tmp/rq-jobs/${tag}`)) === 0;
const supervisorPids = async () => (await sh(target, 'supervisorctl pid aq-rq-default:aq-rq-default-1 aq-rq-default:aq-rq-default-2')).trim().split('\n');
const systemdPid = async () => (await sh(target, 'systemctl show -p MainPID --value aq-rq-mail@1.service')).trim();

beforeAll(async () => {
  target = await startTarget({ name: 'rq' });
  root = tempProject('roles-rq');
  writeRole(root, 'itjobs', ITJOBS_ROLE, { 'files/jobs.py': JOBS_PY });
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('role rq on a real target', () => {
  it('workers of two queues (supervisor with the scheduler, systemd) as instances; a second run changes nothing', async () => {
    writeInventory([DEFAULT, MAIL]);
    const first = await provision(root, 'rq (1st run)');
    expect(first.changed).toBeGreaterThan(0);
    const second = await provision(root, 'rq (2nd run)');
    expect(second.changed, JSON.stringify(changedIds(second))).toBe(0);

    expect(await sh(target, 'supervisorctl status')).toMatch(
      /aq-rq-default:aq-rq-default-1\s+RUNNING[\s\S]*aq-rq-default:aq-rq-default-2\s+RUNNING[\s\S]*aq-rq-default-scheduler\s+RUNNING/,
    );
    expect(await sh(target, 'systemctl is-active aq-rq-mail@1.service')).toBe('active\n');
    for (const hook of ['rq-default', 'rq-default-scheduler', 'rq-mail']) expect(await code(`/etc/keel/apps/aq/check.d/${hook}`), hook).toBe(0);
    expect(await sh(target, `cd ${ROOT}/logs/rq && ls`)).toBe('default-1.log\ndefault-2.log\ndefault-scheduler.log\nmail-1.log\n');
  });

  it('an enqueued job runs in a worker with the env file; a scheduled one through the scheduler; the mail queue has its own worker', async () => {
    await enqueue('default', 'now');
    await until('job "now" ran', ran('now'), rqWait);
    expect(await sh(target, 'cat /tmp/rq-jobs/now')).toMatch(/^\d+ hello from env\n$/);
    expect(await sh(target, `cat ${ROOT}/logs/rq/default-*.log`)).toMatch(/Job OK/);
    await enqueue('default', 'later', 2);
    await until('scheduled job "later" ran', ran('later'), rqWait);
    expect(await sh(target, `cat ${ROOT}/logs/rq/default-scheduler.log`)).toMatch(/[Ss]cheduler/);
    await enqueue('mail', 'mail1');
    await until('job "mail1" ran', ran('mail1'), rqWait);
    expect(await sh(target, `cat ${ROOT}/logs/rq/mail-1.log`)).toMatch(/Job OK/);
  });

  it('a killed worker comes back; the reload hook restarts the workers, the check hook passes', async () => {
    const [p1] = await supervisorPids();
    await sh(target, `kill -9 ${p1}`);
    await until(
      'supervisor restarts worker 1',
      async () => {
        const [n] = await supervisorPids();
        return /^\d+$/.test(n!) && n !== '0' && n !== p1;
      },
      rqWait,
    );
    const m1 = await systemdPid();
    await sh(target, `kill -9 ${m1}`);
    await until(
      'systemd restarts the mail worker',
      async () => {
        const n = await systemdPid();
        return n !== '0' && n !== m1 && (await code('systemctl is-active --quiet aq-rq-mail@1.service')) === 0;
      },
      rqWait,
    );

    const before = await supervisorPids();
    // The reload hook starts the workers and does not wait for rq_min_uptime (3 s) to pass:
    // asked in the same shell as soon as it returns, both are still STARTING.
    const right = await sh(target, `/etc/keel/apps/aq/reload.d/rq-default && /usr/local/lib/keel/keel-service status supervisor 'aq-rq-default:*'`);
    expect(
      right
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[1]),
      right,
    ).toEqual(['STARTING', 'STARTING']);
    const after = await supervisorPids();
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    const mBefore = await systemdPid();
    await sh(target, '/etc/keel/apps/aq/reload.d/rq-mail');
    expect(await systemdPid()).not.toBe(mBefore);
    // The reload hook restarts; the check hook waits until they count as started.
    for (const hook of ['rq-default', 'rq-default-scheduler', 'rq-mail']) expect(await code(`/etc/keel/apps/aq/check.d/${hook} wait 60`), hook).toBe(0);
    // Still working after the restarts.
    await enqueue('default', 'after-reload');
    await until('job "after-reload" ran', ran('after-reload'), rqWait);
  });

  // A deploy's switch: the quiesce hook tells the workers to stop (a warm shutdown: the job in
  // hand goes on), then the reload hook runs at once. It must wait for the stop to end before it
  // starts them: a start while one is still STOPPING does nothing, and it then ends STOPPED.
  it('the reload hook right after the quiesce hook waits for the job in hand, then the workers run', async () => {
    await enqueueSlow('default', 'slow1', 4);
    await until('the slow job started', async () => (await code('test -e /tmp/rq-jobs/slow1.started')) === 0, rqWait);
    await sh(target, '/etc/keel/apps/aq/quiesce.d/rq-default');
    expect(await sh(target, 'supervisorctl status "aq-rq-default:*" || true'), 'the worker with the job is still stopping').toMatch(/ STOPPING /);
    await sh(target, '/etc/keel/apps/aq/reload.d/rq-default');
    expect(await ran('slow1')(), 'the job in hand finished before the restart').toBe(true);
    expect(await code('/etc/keel/apps/aq/check.d/rq-default wait 60')).toBe(0);
    await enqueue('default', 'after-quiesce');
    await until('job "after-quiesce" ran', ran('after-quiesce'), rqWait);
  });

  it('one more worker on the systemd queue restarts that queue only', async () => {
    const before = await supervisorPids();
    writeInventory([DEFAULT, { ...MAIL, vars: { ...MAIL.vars, rq_workers: 2 } }]);
    const r = await provision(root, 'rq mail workers 1 -> 2');
    expect(changedIds(r)).toEqual(expect.arrayContaining(['rq[mail]/template:/etc/systemd/system/aq-rq-mail.target', 'handler/rq[mail]:restart']));
    expect(await sh(target, 'systemctl is-active aq-rq-mail@1.service aq-rq-mail@2.service')).toBe('active\nactive\n');
    expect(await supervisorPids()).toEqual(before);
    expect((await provision(root, 'rq after the change')).changed).toBe(0);
  });
});
