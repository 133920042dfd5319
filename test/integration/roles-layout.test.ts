// The layout agreement (docs/layout.md) on the real stack: base + a stand-in release + app
// (gunicorn under supervisor) + nginx + logrotate. After the stack serves requests, a forced
// logrotate rotates nginx's and gunicorn's actual log files (app_root/logs/nginx/,
// app_root/logs/gunicorn/, pid file sockets/gunicorn/gunicorn-<slot>.pid) and both processes keep
// writing: to the new files, not the rotated ones.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { sh, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, provisionItest as provision } from '../helpers/cli.js';
import { writeItappRole } from '../helpers/itapp.js';
import { tempProject, writeInventory } from '../helpers/project.js';
import { until } from '../helpers/wait.js';

const ROOT = '/home/acme/webapp';
const L = `${ROOT}/logs`;
let target: TestTarget;
let root: string;

const count = async (pattern: string, file: string) => Number((await sh(target, `grep -c -- '${pattern}' ${file} || true`)).trim());
/** Log lines are written after the answer: wait (bounded) until `file` has `n` of them. */
const logged = (n: number, pattern: string, file: string) => until(`${n} lines "${pattern}" in ${file}`, async () => (await count(pattern, file)) >= n);

beforeAll(async () => {
  target = await startTarget({ name: 'layout' });
  root = tempProject('roles-layout');
  writeItappRole(root);
  writeInventory(root, target, {
    roles: ['base', 'itapp', 'app', 'nginx', 'logrotate'],
    vars: { app_user: 'acme', app_name: 'acme', app_module: 'wsgi:application', app_workers: 2 },
  });
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the layout on base + app + nginx + logrotate', () => {
  it("converges in two runs; on the first, the app's restart covers its reload (one of them runs, not both)", async () => {
    const first = await provision(root, 'layout (1st run)');
    const handlers = changedIds(first).filter((id) => id.startsWith('handler/'));
    expect(handlers).not.toContain('handler/app:reload app');
    const second = await provision(root, 'layout (2nd run)');
    expect(second.changed, JSON.stringify(changedIds(second))).toBe(0);
    expect(await sh(target, 'curl -s http://127.0.0.1/a')).toBe('wsgi ok greeting=- path=/a\n');
    expect(await sh(target, `test -s ${ROOT}/sockets/gunicorn/gunicorn-a.pid && ls ${L}/nginx`)).toBe('access.log\nerror.log\n');
    // supervisor's output of the live slot's program (slot a), and gunicorn's own logs.
    expect(await sh(target, `ls ${L}/gunicorn`)).toBe('access.log\nacme-a.log\nerror.log\n');
  });

  it('logrotate -f rotates the actual nginx and gunicorn logs, and both keep writing to the new files', async () => {
    await sh(target, 'for i in 1 2 3; do curl -s -o /dev/null http://127.0.0.1/before; done');
    await logged(3, 'GET /before', `${L}/nginx/access.log`);
    await logged(3, 'GET /before', `${L}/gunicorn/access.log`);
    expect(await count('GET /before', `${L}/nginx/access.log`)).toBe(3);
    expect(await count('GET /before', `${L}/gunicorn/access.log`)).toBe(3);

    await sh(target, 'logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/webapp');
    expect(await count('GET /before', `${L}/nginx/access.log.1`)).toBe(3);
    expect(await count('GET /before', `${L}/gunicorn/access.log.1`)).toBe(3);

    await sh(target, 'for i in 1 2; do curl -s -o /dev/null http://127.0.0.1/after; done');
    await logged(2, 'GET /after', `${L}/nginx/access.log`);
    await logged(2, 'GET /after', `${L}/gunicorn/access.log`);
    // New requests land in the new files only: the processes reopened them.
    expect(await count('GET /after', `${L}/nginx/access.log`)).toBe(2);
    expect(await count('GET /after', `${L}/nginx/access.log.1`)).toBe(0);
    expect(await count('GET /after', `${L}/gunicorn/access.log`)).toBe(2);
    expect(await count('GET /after', `${L}/gunicorn/access.log.1`)).toBe(0);
    // nginx's workers reopened too (they write the access log): no permission error.
    expect(await sh(target, `cat ${L}/nginx/error.log /var/log/nginx/error.log 2>/dev/null | grep -c 'Permission denied' || true`)).toBe('0\n');
    // Ownership as the layout says: nginx's files for the web server, gunicorn's the app user's.
    expect(await sh(target, `stat -c '%U' ${L}/nginx/access.log ${L}/gunicorn/access.log`)).toBe('www-data\nacme\n');
    // A second forced rotation compresses the first (delaycompress) and still works.
    await sh(target, 'logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/webapp && curl -s -o /dev/null http://127.0.0.1/third');
    await logged(1, 'GET /third', `${L}/nginx/access.log`);
    // (an empty error.log is left alone: notifempty)
    expect(await sh(target, `ls ${L}/nginx | grep access`)).toBe('access.log\naccess.log.1\naccess.log.2.gz\n');
    expect(await count('GET /third', `${L}/nginx/access.log`)).toBe(1);
  });
});
