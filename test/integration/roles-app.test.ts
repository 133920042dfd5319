// Role app against a real target: gunicorn and uvicorn, under supervisor and under systemd,
// each combination applied twice (the second run changes nothing) and answering through nginx.
// The four combinations run one after the other on ONE target, so each switch (process manager,
// server, socket -> port) is checked to converge too. The app code is a test-only role (itapp)
// standing in for a deploy: a WSGI and an ASGI app using only the standard library, served by
// Debian's python3-gunicorn / python3-uvicorn (no PyPI here) seen through the venv.
//
// The app server runs in slot a or b (docs/deploy.md): a change that restarts it starts the
// other slot, switches nginx to it, then stops the old one. A request loop through nginx during
// each such restart counts the requests that failed: 0, for gunicorn and uvicorn alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { writeItappRole, writeWebInventory } from '../helpers/itapp.js';
import { tempProject } from '../helpers/project.js';
import { sh, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, converge, provisionItest as provision } from '../helpers/cli.js';
import { describeCounts, requestsDuring } from '../helpers/requests.js';
import { eventually } from '../helpers/wait.js';

const SECRET = 'not-a-real-secret-4f1c9';
const base = {
  app_user: 'acme',
  app_name: 'acme',
  app_module: 'wsgi:application',
  app_workers: 2,
  app_env: { GREETING: 'hello-1', SECRET_KEY: SECRET },
  database_url: 'postgresql://acme:pw@127.0.0.1:5432/acme',
};
const ROOT = '/home/acme/webapp';
const APPCTL = '/usr/local/sbin/appctl-acme';

let target: TestTarget;
let root: string;

beforeAll(async () => {
  target = await startTarget({ name: 'app' });
  root = tempProject('roles-app');
  writeItappRole(root);
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const liveSlot = async () => (await sh(target, `${APPCTL} live-slot`)).trim();

/** The main pid of the live slot's server. */
async function masterPid(manager: 'supervisor' | 'systemd'): Promise<string> {
  const slot = await liveSlot();
  const pid =
    manager === 'supervisor'
      ? (await sh(target, `supervisorctl pid acme-${slot}`)).trim()
      : (await sh(target, `systemctl show -p MainPID --value acme@${slot}.service`)).trim();
  expect(pid).toMatch(/^[1-9][0-9]*$/);
  return pid;
}

/** Worker processes of a master: gunicorn forks them; uvicorn spawns them through
 *  multiprocessing (whose resource tracker is a child too, and not a worker). */
async function workers(pid: string, pattern = ''): Promise<number> {
  return Number((await sh(target, `pgrep -c -P ${pid} ${pattern} || true`)).trim());
}

/** A provision that restarts the app, with requests through nginx all along: none may fail. */
async function provisionUnderLoad(label: string): Promise<any> {
  const { result, counts } = await requestsDuring(target, () => provision(root, label));
  console.log(`${label}: requests through nginx during it: ${describeCounts(counts)}`);
  expect(counts.total).toBeGreaterThan(10);
  expect(counts.failed, JSON.stringify(counts.byStatus)).toBe(0);
  return result;
}

describe('role app on a real target', () => {
  it('gunicorn under supervisor on a unix socket: converges, answers through nginx, env file 0600 with the secret', async () => {
    writeWebInventory(root, target, { ...base, app_server: 'gunicorn', app_process_manager: 'supervisor' });
    await converge(root, 'gunicorn/supervisor');

    expect(await sh(target, 'curl -s http://127.0.0.1/hello')).toBe('wsgi ok greeting=hello-1 path=/hello\n');
    expect(await liveSlot()).toBe('a');
    expect(await sh(target, 'supervisorctl status acme-a')).toMatch(/^acme-a\s+RUNNING/);
    // supervisor knows only the slot in use: the other has no program, and status is all green.
    expect(await sh(target, 'supervisorctl status acme-b || true')).toMatch(/no such process/);
    expect((await target.exec(['supervisorctl', 'status'])).code).toBe(0);
    const pid = await masterPid('supervisor');
    expect(await sh(target, `tr '\\0' ' ' < /proc/${pid}/cmdline`)).toContain(
      `-m gunicorn --config ${ROOT}/config/gunicorn/gunicorn.conf.py --chdir ${ROOT}/slots/a --pid ${ROOT}/sockets/gunicorn/gunicorn-a.pid ` +
        `--bind unix:${ROOT}/sockets/gunicorn/gunicorn-a.sock wsgi:application`,
    );
    expect(await sh(target, `stat -c '%U %a' /proc/${pid}`)).toBe('acme 555\n');
    expect(await sh(target, `stat -c '%F %G %a' ${ROOT}/sockets/gunicorn/gunicorn-a.sock`)).toBe('socket www-data 770\n');
    expect(await sh(target, `readlink ${ROOT}/slots/a`)).toBe('../releases/itest\n');

    expect(await sh(target, `stat -c '%U %G %a' ${ROOT}/config/app.env`)).toBe('acme acme 600\n');
    const env = await sh(target, `cat ${ROOT}/config/app.env`);
    expect(env).toContain(`SECRET_KEY='${SECRET}'`);
    expect(env).toContain(`DATABASE_URL='postgresql://acme:pw@127.0.0.1:5432/acme'`);
    // The venv sees Debian's gunicorn through --system-site-packages.
    expect(await sh(target, `grep include-system-site-packages ${ROOT}/current/.venv/pyvenv.cfg`)).toBe('include-system-site-packages = true\n');
  });

  it('gunicorn under supervisor: a config change starts the other slot and moves traffic to it, 0 failed requests', async () => {
    const pid = await masterPid('supervisor');
    await eventually(async () => expect(await workers(pid)).toBe(2));
    writeWebInventory(root, target, { ...base, app_workers: 3, app_env: { ...base.app_env, GREETING: 'hello-2' } });
    const j = await provisionUnderLoad('gunicorn/supervisor workers 2->3');
    const ids = changedIds(j);
    expect(ids).toContain('handler/app:reload app');
    expect(ids).not.toContain('handler/app:restart app');
    expect(await liveSlot()).toBe('b');
    const now = await masterPid('supervisor');
    expect(now).not.toBe(pid);
    await eventually(async () => expect(await workers(now)).toBe(3));
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('wsgi ok greeting=hello-2 path=/\n');
    // The old slot was stopped once nginx had moved, and its program removed.
    expect(await sh(target, 'supervisorctl status acme-a || true')).toMatch(/no such process/);
    expect((await provision(root, 'gunicorn/supervisor again')).changed).toBe(0);
  });

  it('gunicorn under systemd (seed 000): the supervisor programs go, the units answer; a change moves slots with 0 failed requests', async () => {
    writeWebInventory(root, target, { ...base, app_server: 'gunicorn', app_process_manager: 'systemd' });
    await converge(root, 'gunicorn/systemd');
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('wsgi ok greeting=hello-1 path=/\n');
    expect((await target.exec(['test', '-e', '/etc/supervisor/conf.d/acme.conf'])).code).not.toBe(0);
    expect((await target.exec(['sh', '-c', 'supervisorctl status acme-a acme-b'])).stdout).toMatch(/no such process/);
    const slot = await liveSlot();
    expect(await sh(target, `systemctl is-active acme@${slot}; systemctl is-enabled acme@a acme@b`)).toBe('active\nenabled\nenabled\n');

    const pid = await masterPid('systemd');
    await eventually(async () => expect(await workers(pid)).toBe(2));
    writeWebInventory(root, target, { ...base, app_server: 'gunicorn', app_process_manager: 'systemd', app_workers: 4 });
    const j = await provisionUnderLoad('gunicorn/systemd workers 2->4');
    expect(changedIds(j)).toContain('handler/app:reload app');
    expect(await liveSlot()).not.toBe(slot);
    const now = await masterPid('systemd');
    await eventually(async () => expect(await workers(now)).toBe(4));
    expect(await sh(target, `systemctl is-active acme@${slot} || true`)).not.toBe('active\n');
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('wsgi ok greeting=hello-1 path=/\n');
  });

  it("uvicorn under systemd on tcp/3579 (seed 001): nginx proxies to the live slot's port (3579 or 3580)", async () => {
    writeWebInventory(root, target, {
      ...base,
      app_server: 'uvicorn',
      app_process_manager: 'systemd',
      app_module: 'asgi:app',
      app_bind_port: 3579,
      app_workers: 0,
    });
    await converge(root, 'uvicorn/systemd port 3579');
    expect(await sh(target, 'curl -s http://127.0.0.1/x')).toBe('asgi ok greeting=hello-1 path=/x\n');
    const port = (await liveSlot()) === 'a' ? 3579 : 3580;
    expect(await sh(target, `curl -s http://127.0.0.1:${port}/direct`)).toBe('asgi ok greeting=hello-1 path=/direct\n');
    const pid = await masterPid('systemd');
    expect(await sh(target, `tr '\\0' ' ' < /proc/${pid}/cmdline`)).toContain(`-m uvicorn --host 127.0.0.1 --port ${port} --workers`);
    // app_workers 0: one worker per core, counted on the host at start.
    await eventually(async () => expect(await workers(pid, '-f spawn_main')).toBe(Number((await sh(target, 'nproc')).trim())));
    expect((await target.exec(['test', '-e', `${ROOT}/config/gunicorn.conf.py`])).code).not.toBe(0);
  });

  it('uvicorn under supervisor on unix sockets: the units go, the program answers; an env change restarts it with 0 failed requests', async () => {
    writeWebInventory(root, target, { ...base, app_server: 'uvicorn', app_process_manager: 'supervisor', app_module: 'asgi:app' });
    await converge(root, 'uvicorn/supervisor socket');
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('asgi ok greeting=hello-1 path=/\n');
    expect((await target.exec(['test', '-e', '/etc/systemd/system/acme@.service'])).code).not.toBe(0);
    expect((await target.exec(['sh', '-c', 'systemctl is-active acme@a acme@b'])).stdout).not.toMatch(/^active/m);
    const slot = await liveSlot();
    const pid = await masterPid('supervisor');
    expect(await sh(target, `tr '\\0' ' ' < /proc/${pid}/cmdline`)).toContain(`-m uvicorn --uds ${ROOT}/sockets/uvicorn/uvicorn-${slot}.sock --workers 2`);
    expect((await target.exec(['sh', '-c', 'curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:3579/'])).stdout).toBe('000');

    // uvicorn has no graceful reload of its own: the other slot starts with the new env, then
    // takes the traffic (before slots, this was a restart and nginx's 502s).
    writeWebInventory(root, target, {
      ...base,
      app_server: 'uvicorn',
      app_process_manager: 'supervisor',
      app_module: 'asgi:app',
      app_env: { ...base.app_env, GREETING: 'hello-3' },
    });
    await provisionUnderLoad('uvicorn/supervisor env change');
    expect(await masterPid('supervisor')).not.toBe(pid);
    expect(await liveSlot()).not.toBe(slot);
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('asgi ok greeting=hello-3 path=/\n');
  });
});
