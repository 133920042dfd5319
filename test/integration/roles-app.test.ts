// Role app against a real target: gunicorn and uvicorn, under supervisor and under systemd,
// each combination applied twice (the second run changes nothing) and answering through nginx.
// The four combinations run one after the other on ONE target, so each switch (process manager,
// server, socket -> port) is checked to converge too. The app code is a test-only role (itapp)
// standing in for a deploy: a WSGI and an ASGI app using only the standard library, served by
// Debian's python3-gunicorn / python3-uvicorn (no PyPI here) seen through the venv.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { writeItappRole, writeWebInventory } from '../helpers/itapp.js';
import { tempProject } from '../helpers/project.js';
import { sh, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, converge, provisionItest as provision } from '../helpers/cli.js';
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

async function masterPid(manager: 'supervisor' | 'systemd'): Promise<string> {
  const pid =
    manager === 'supervisor' ? (await sh(target, 'supervisorctl pid acme')).trim() : (await sh(target, 'systemctl show -p MainPID --value acme')).trim();
  expect(pid).toMatch(/^[1-9][0-9]*$/);
  return pid;
}

/** Worker processes of a master: gunicorn forks them; uvicorn spawns them through
 *  multiprocessing (whose resource tracker is a child too, and not a worker). */
async function workers(pid: string, pattern = ''): Promise<number> {
  return Number((await sh(target, `pgrep -c -P ${pid} ${pattern} || true`)).trim());
}

describe('role app on a real target', () => {
  it('gunicorn under supervisor on a unix socket: converges, answers through nginx, env file 0600 with the secret', async () => {
    writeWebInventory(root, target, { ...base, app_server: 'gunicorn', app_process_manager: 'supervisor' });
    await converge(root, 'gunicorn/supervisor');

    expect(await sh(target, 'curl -s http://127.0.0.1/hello')).toBe('wsgi ok greeting=hello-1 path=/hello\n');
    expect(await sh(target, 'supervisorctl status acme')).toMatch(/^acme\s+RUNNING/);
    const pid = await masterPid('supervisor');
    expect(await sh(target, `tr '\\0' ' ' < /proc/${pid}/cmdline`)).toContain(
      '-m gunicorn --config /home/acme/webapp/config/gunicorn/gunicorn.conf.py wsgi:application',
    );
    expect(await sh(target, `stat -c '%U %a' /proc/${pid}`)).toBe('acme 555\n');
    expect(await sh(target, `stat -c '%F %G %a' ${ROOT}/sockets/gunicorn/gunicorn.sock`)).toBe('socket www-data 770\n');

    expect(await sh(target, `stat -c '%U %G %a' ${ROOT}/config/app.env`)).toBe('acme acme 600\n');
    const env = await sh(target, `cat ${ROOT}/config/app.env`);
    expect(env).toContain(`SECRET_KEY='${SECRET}'`);
    expect(env).toContain(`DATABASE_URL='postgresql://acme:pw@127.0.0.1:5432/acme'`);
    // The venv sees Debian's gunicorn through --system-site-packages.
    expect(await sh(target, `grep include-system-site-packages ${ROOT}/current/.venv/pyvenv.cfg`)).toBe('include-system-site-packages = true\n');
  });

  it('gunicorn under supervisor: a config change is a graceful reload (same master, new workers, new env)', async () => {
    const pid = await masterPid('supervisor');
    await eventually(async () => expect(await workers(pid)).toBe(2));
    writeWebInventory(root, target, { ...base, app_workers: 3, app_env: { ...base.app_env, GREETING: 'hello-2' } });
    const j = await provision(root, 'gunicorn/supervisor workers 2->3');
    const ids = changedIds(j);
    expect(ids).toContain('handler/app:reload app');
    expect(ids).not.toContain('handler/app:restart app');
    expect(await masterPid('supervisor')).toBe(pid);
    await eventually(async () => expect(await workers(pid)).toBe(3));
    await eventually(async () => expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('wsgi ok greeting=hello-2 path=/\n'));
    expect((await provision(root, 'gunicorn/supervisor again')).changed).toBe(0);
  });

  it('gunicorn under systemd (seed 000): the supervisor program goes, the unit answers, reload keeps the master', async () => {
    writeWebInventory(root, target, { ...base, app_server: 'gunicorn', app_process_manager: 'systemd' });
    await converge(root, 'gunicorn/systemd');
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('wsgi ok greeting=hello-1 path=/\n');
    expect((await target.exec(['test', '-e', '/etc/supervisor/conf.d/acme.conf'])).code).not.toBe(0);
    expect((await target.exec(['sh', '-c', 'supervisorctl status acme'])).stdout).toMatch(/no such process/);
    expect(await sh(target, 'systemctl is-active acme; systemctl is-enabled acme')).toBe('active\nenabled\n');

    const pid = await masterPid('systemd');
    await eventually(async () => expect(await workers(pid)).toBe(2));
    writeWebInventory(root, target, { ...base, app_server: 'gunicorn', app_process_manager: 'systemd', app_workers: 4 });
    const j = await provision(root, 'gunicorn/systemd workers 2->4');
    expect(changedIds(j)).toContain('handler/app:reload app');
    expect(await masterPid('systemd')).toBe(pid);
    await eventually(async () => expect(await workers(pid)).toBe(4));
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('wsgi ok greeting=hello-1 path=/\n');
  });

  it('uvicorn under systemd on tcp/3579 (seed 001): nginx proxies to the port', async () => {
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
    expect(await sh(target, 'curl -s http://127.0.0.1:3579/direct')).toBe('asgi ok greeting=hello-1 path=/direct\n');
    const pid = await masterPid('systemd');
    expect(await sh(target, `tr '\\0' ' ' < /proc/${pid}/cmdline`)).toContain('-m uvicorn --host 127.0.0.1 --port 3579 --workers');
    // app_workers 0: one worker per core, counted on the host at start.
    await eventually(async () => expect(await workers(pid, '-f spawn_main')).toBe(Number((await sh(target, 'nproc')).trim())));
    expect((await target.exec(['test', '-e', `${ROOT}/config/gunicorn.conf.py`])).code).not.toBe(0);
  });

  it('uvicorn under supervisor on the unix socket: the unit goes, the program answers', async () => {
    writeWebInventory(root, target, { ...base, app_server: 'uvicorn', app_process_manager: 'supervisor', app_module: 'asgi:app' });
    await converge(root, 'uvicorn/supervisor socket');
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('asgi ok greeting=hello-1 path=/\n');
    expect((await target.exec(['test', '-e', '/etc/systemd/system/acme.service'])).code).not.toBe(0);
    expect((await target.exec(['systemctl', 'is-active', 'acme'])).stdout.trim()).not.toBe('active');
    const pid = await masterPid('supervisor');
    expect(await sh(target, `tr '\\0' ' ' < /proc/${pid}/cmdline`)).toContain('-m uvicorn --uds /home/acme/webapp/sockets/uvicorn/uvicorn.sock --workers 2');
    expect((await target.exec(['sh', '-c', 'curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:3579/'])).stdout).toBe('000');

    // uvicorn has no graceful reload: a changed env restarts it (a new master).
    writeWebInventory(root, target, {
      ...base,
      app_server: 'uvicorn',
      app_process_manager: 'supervisor',
      app_module: 'asgi:app',
      app_env: { ...base.app_env, GREETING: 'hello-3' },
    });
    await provision(root, 'uvicorn/supervisor env change');
    expect(await masterPid('supervisor')).not.toBe(pid);
    expect(await sh(target, 'curl -s http://127.0.0.1/')).toBe('asgi ok greeting=hello-3 path=/\n');
  });
});
