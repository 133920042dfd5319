// `npm run demo`, the README's main-job command, for real: three local targets (web1, worker1,
// db1), the whole stack provisioned, the sample app deployed; then a second run that changes
// nothing and deploys nothing. Run in a scratch project (KEEL_ROOT) with keel's own scripts.
// The targets start from the warm image (the stack's Debian packages preinstalled: installing
// them is what the role tests test; here the time goes to the stack and the deploy).
//
// On Debian 12 and on Debian 13 (`npm run demo -- --distro trixie`), with the same inventory:
// nothing in it names a version (PostgreSQL is 15 on one, 17 on the other).
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { targetDown } from '../../src/target/docker.js';
import { runKeel } from '../helpers/cli.js';

const run = promisify(execFile);
const pkg = resolve(import.meta.dirname, '..', '..');

describe.each([
  { distro: 'bookworm', postgres: '15' },
  { distro: 'trixie', postgres: '17' },
])('npm run demo -- --distro $distro', ({ distro, postgres }) => {
  const root = mkdtempSync(join(tmpdir(), `keel-demo-${distro}-`));
  afterAll(async () => {
    await targetDown({ root, forget: true }).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  async function demo(): Promise<{ stdout: string; stderr: string; ms: number }> {
    const started = Date.now();
    const warm = (await run('sh', [join(pkg, 'scripts', 'build-warm-image.sh'), distro])).stdout.trim().split('\n').pop()!;
    await run(process.execPath, [join(pkg, 'scripts', 'build.mjs')], { cwd: pkg });
    const r = await run(process.execPath, [join(pkg, 'scripts', 'demo.mjs'), '--distro', distro], {
      cwd: root,
      env: { ...process.env, KEEL_ROOT: root, KEEL_TARGET_IMAGE: warm },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { ...r, ms: Date.now() - started };
  }

  it('provisions web, worker and db, deploys the sample app and prints the page; a second run changes nothing', async () => {
    const first = await demo();
    console.log(`first demo run on ${distro}: ${(first.ms / 1000).toFixed(0)} s`);
    // The release's own PostgreSQL, with no version in the inventory.
    expect(first.stdout).toMatch(new RegExp(`db1 +changed +handler/postgres:restart postgresql +ran: systemctl restart -- 'postgresql@${postgres}-main'`));
    expect(first.stdout).toMatch(/keel demo: the sample app is live/);
    expect(first.stdout).toMatch(/http:\/\/127\.0\.0\.1:\d+\//);
    expect(first.stdout).toMatch(/^ {4}version: v1$/m);
    expect(first.stdout).toMatch(/^ {4}count: 1$/m);
    expect(first.stdout).toMatch(/release {3}\d{8}-\d{6}Z-[0-9a-f]{12} {2}\(on web1 and worker1\)/);
    expect(first.stdout).toMatch(/dump {6}web1:\/home\/sample\/webapp\/backups\/\S+\.dump/);
    expect(first.stdout).toContain('keel.js deploy local --branch v4');
    expect(first.stdout).toContain('target down');

    const second = await demo();
    console.log(`second demo run on ${distro}: ${(second.ms / 1000).toFixed(0)} s`);
    expect(second.stderr).toMatch(/is live on every host already: nothing to deploy/);
    expect(second.stdout).toMatch(/3 host\(s\): \d+ ok, 0 changed, 0 failed, 0 unreachable/);
    expect(second.stdout).toMatch(/^ {4}count: 2$/m);

    // One release on web and worker; and the stack is what it says: a job enqueued on the web
    // host (through Redis on db1) runs on the worker, which writes to PostgreSQL on db1.
    const rel = await runKeel(['releases', 'local', '--output', 'json'], { root });
    const hosts = rel.json().hosts;
    expect(new Set(hosts.map((h: any) => h.live)).size).toBe(1);
    const web = (
      await run('docker', ['ps', '--filter', 'label=keel.target.name=web1', '--filter', `label=keel.target.root=${root}`, '--format', '{{.Names}}'])
    ).stdout.trim();
    const manage = (cmd: string) =>
      run('docker', [
        'exec',
        web,
        'sh',
        '-c',
        'cd /home/sample/webapp/current && runuser -u sample -- ' +
          `sh -c 'set -a; . /home/sample/webapp/config/app.env; set +a; .venv/bin/python manage.py ${cmd}'`,
      ]);
    await manage('enqueue demo-test');
    let count = '0';
    for (let i = 0; i < 60 && count === '0'; i++) {
      count = (await manage('jobcount demo-test')).stdout.trim();
      if (count === '0') await new Promise((r) => setTimeout(r, 500));
    }
    expect(count).toBe('1');
  });
});
