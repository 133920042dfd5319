// Built-in role `logrotate` (with `base`, which lays out app_root/logs) on a real target:
// applied twice over real SSH, then logrotate checks the file and really rotates logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { tempProject, writeInventory } from '../helpers/project.js';
import { shExec, startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';

let target: TestTarget;
let root: string;

beforeAll(async () => {
  target = await startTarget();
  root = tempProject('role-lr');
  writeInventory(root, target, { group: 'web', roles: ['base', 'logrotate'], vars: { app_user: 'webapp', logrotate_keep: 7 } });
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('role logrotate', () => {
  it('installs a config logrotate accepts, converges, and rotates the app, gunicorn and nginx logs', async () => {
    let t0 = Date.now();
    const first = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const firstMs = Date.now() - t0;
    expect(first.json().failed, first.stdout).toBe(0);
    expect(first.code).toBe(0);
    t0 = Date.now();
    const second = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const secondMs = Date.now() - t0;
    expect(second.code).toBe(0);
    expect(second.json().changed, second.stdout).toBe(0);
    console.log(`logrotate (+base): first run ${firstMs} ms, second run ${secondMs} ms (0 changed)`);

    const check = await shExec(target, 'logrotate -d /etc/logrotate.d/webapp');
    expect(check.code, check.stderr).toBe(0);
    // The whole configuration the daily timer reads accepts it too.
    expect((await shExec(target, 'logrotate -d /etc/logrotate.conf')).code).toBe(0);

    // Logs as the components would write them, then a forced rotation.
    const L = '/home/webapp/webapp/logs';
    const setup = await shExec(
      target,
      `set -e
      install -d -o webapp -g webapp -m 0750 ${L}/app ${L}/gunicorn ${L}/uvicorn
      install -d -o root -g root -m 0755 ${L}/nginx
      install -d -o root -g webapp -m 0750 ${L}/rq
      runuser -u webapp -- sh -c 'echo app-line > ${L}/app/django.log; echo g > ${L}/gunicorn/error.log; echo u > ${L}/uvicorn/uvicorn.log'
      echo GET > ${L}/nginx/access.log
      echo job > ${L}/rq/default-1.log
      logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/webapp
      cd ${L}; find . -type f | sort; stat -c '%n %s %U' app/django.log app/django.log.1`,
    );
    expect(setup.code, setup.stderr).toBe(0);
    const out = setup.stdout.trim().split('\n');
    expect(out).toEqual([
      './app/django.log',
      './app/django.log.1',
      './gunicorn/error.log.1',
      './nginx/access.log.1',
      './rq/default-1.log', // copytruncate: supervisord or systemd keep appending to it
      './rq/default-1.log.1',
      './uvicorn/uvicorn.log', // supervisord's capture: supervisord rotates it itself
      'app/django.log 0 webapp', // copytruncate: the writer keeps its file, now empty
      'app/django.log.1 9 webapp', // "app-line\n"
    ]);
  });
});
