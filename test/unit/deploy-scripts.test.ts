// The deploy's generated shell, without a host: every phase's steps parse as POSIX sh (dash),
// and the rules that decide what is removed (releases kept) run for real on a temp dir. The
// integration tests (deploy.test.ts) run them on real targets; these catch a broken script in
// a second instead of a deploy.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostDeploy } from '../../src/deploy/config.js';
import type { HostPlan } from '../../src/engine/plan.js';
import { stepsBody, type Step } from '../../src/engine/steps.js';
import * as scripts from '../../src/deploy/scripts.js';
import * as db from '../../src/deploy/db-scripts.js';
import * as web from '../../src/deploy/web-scripts.js';
import { parseDatabaseUrl } from '../../src/deploy/database.js';
import { expectShellSyntax, runSh } from './resources/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-deploy-scripts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function host(over: Partial<HostDeploy> = {}): HostDeploy {
  return {
    plan: {} as HostPlan,
    name: 'web1',
    appUser: 'app',
    appGroup: 'app',
    appRoot: `${dir}/it's app`,
    appName: 'app',
    appDir: `${dir}/it's app/current`,
    envFile: `${dir}/app.env`,
    python: '/usr/bin/python3',
    requirements: 'requirements.txt',
    pipIndexUrl: '',
    wheelhouse: '',
    web: true,
    appctl: '/usr/local/sbin/appctl-app',
    healthChecks: [{ path: '/ping' }, { path: '/', status: 200, contains: "it's $(up)" }, { command: 'python manage.py check' }],
    healthPath: '/ping',
    nginxHealthPath: '/ping',
    healthHost: 'example.org',
    healthTimeout: 30,
    buildCommands: ['$PYTHON manage.py collectstatic --noinput'],
    hooks: { after_build: ['echo "built"'], after_switch: ['true'] },
    keepReleases: 2,
    backupDir: `${dir}/backups`,
    backupKeep: 3,
    maintenanceFile: `${dir}/maintenance_on.html`,
    holdFile: `${dir}/hold`,
    lbDrain: '',
    lbRestore: '',
    ...over,
  };
}

const script = (steps: Step[]) => stepsBody('N0NCE', steps, { captureAll: true, timed: true });

describe('every deploy step parses as POSIX sh', () => {
  const h = host();
  const database = parseDatabaseUrl("postgresql://app:p'w$(x)@db1:5432/app");
  const src = { kind: 'local' as const, repo: '', branch: 'main', sha: 'a'.repeat(40), subdir: '' };
  const cases: [string, Step[]][] = [
    ['build', scripts.buildSteps(h, { id: 'r1', src, archive: Buffer.from('x'), venvKey: 'k', deployKey: '', knownHosts: '', by: 'me@there' })],
    ['migrate', scripts.migrateSteps(h, 'r1', '$PYTHON manage.py migrate --noinput')],
    ['switch', [...scripts.holdSteps(h, true), ...scripts.quiesceSteps(h), ...scripts.switchSteps(h, 'r1'), ...web.slotSwitchSteps(h, 'b')]],
    ['reload', scripts.reloadSteps(h, 'auto')],
    ['health', scripts.healthSteps(h, { maintenance: false, roundSeconds: 5 })],
    ['health in maintenance', scripts.healthSteps(host({ nginxHealthPath: '' }), { maintenance: true, roundSeconds: 5 })],
    ['retire', [...web.slotStopSteps(h, 'a'), ...scripts.holdSteps(h, false)]],
    ['start', web.slotStartSteps(h, 'b', 'r1')],
    ['check', web.slotCheckSteps(h, 'b', 'r1', 5)],
    ['switch back', [...web.slotEnsureSteps(h, 'a', 'r0'), ...web.slotsOffSteps(h), ...scripts.unlinkSteps(h)]],
    ['prune', scripts.pruneSteps(h, ['r0'])],
    ['release id free', scripts.releaseFreeSteps(h, 'r1')],
    ['mark failed', scripts.markFailedSteps(h, 'r1', "it's $(broken)")],
    ['maintenance', [...scripts.maintenanceSteps(h, true), ...scripts.maintenanceSteps(h, false)]],
    ['dump', db.dumpSteps(h, { db: database, dir: h.backupDir, name: 'r1', keep: 3 })],
    ['dump migrated', db.dumpMigratedSteps({ dir: h.backupDir, name: 'r1' }, 'r1')],
    ['restore', db.restoreSteps(h, database, `${dir}/a dump.dump`)],
  ];
  for (const [name, steps] of cases) it(name, () => expectShellSyntax(script(steps)));
});

describe('prune keeps deploy_keep_releases releases a rollback can go to', () => {
  it('the newest good ones, the live and the protected one, and failed ones newer than the oldest kept', () => {
    const h = host({ appRoot: join(dir, 'prune'), keepReleases: 2 });
    const rel = join(h.appRoot, 'releases');
    // Oldest first: r1..r7; r4 and r6 failed, r7 was cut short (no .keel-built).
    const releases: [string, 'good' | 'failed' | 'unbuilt'][] = [
      ['20261201-000001Z-aa', 'good'],
      ['20261201-000002Z-bb', 'good'],
      ['20261201-000003Z-cc', 'good'],
      ['20261201-000004Z-dd', 'failed'],
      ['20261201-000005Z-ee', 'good'],
      ['20261201-000006Z-ff', 'failed'],
      ['20261201-000007Z-gg', 'unbuilt'],
    ];
    for (const [id, state] of releases) {
      mkdirSync(join(rel, id), { recursive: true });
      if (state !== 'unbuilt') writeFileSync(join(rel, id, '.keel-built'), 'x');
      if (state === 'failed') writeFileSync(join(rel, id, '.keel-failed'), 'health failed');
    }
    symlinkSync('releases/20261201-000005Z-ee', join(h.appRoot, 'current'));
    const steps = scripts.pruneSteps(h, ['20261201-000001Z-aa']);
    const r = runSh(steps[0]!.commands.map(String).join('\n'));
    expect(r.stderr).toBe('');
    // Kept: the 2 newest good (r5 live, r3), the protected r1, and r4, r6, r7 (not good, newer than r3).
    expect(readdirSync(rel).sort()).toEqual([
      '20261201-000001Z-aa',
      '20261201-000003Z-cc',
      '20261201-000004Z-dd',
      '20261201-000005Z-ee',
      '20261201-000006Z-ff',
      '20261201-000007Z-gg',
    ]);
    expect(r.stdout).toContain('removed release 20261201-000002Z-bb');
    expect(r.stdout).toContain('kept 2 release(s) that can be rolled back to: 20261201-000005Z-ee 20261201-000003Z-cc');
  });
});

describe('a release id already taken', () => {
  it('stops the deploy before anything: a run of the same commit in the same second made it', () => {
    const h = host({ appRoot: join(dir, 'taken') });
    const id = '20261201-000001Z-aaaaaaaaaaaa';
    const run = () => runSh(scripts.releaseFreeSteps(h, id)[0]!.commands.map(String).join('\n'));
    expect(run()).toMatchObject({ status: 0, stdout: `${id} is new here\n` });
    mkdirSync(join(h.appRoot, 'releases', id), { recursive: true });
    expect(run()).toMatchObject({ status: 1, stdout: '', stderr: `${h.appRoot}/releases/${id} exists already\n` });
  });
});

describe('dump retention', () => {
  it('keeps the newest N, and the one a migration followed whatever its age', () => {
    const backups = join(dir, 'retention');
    mkdirSync(backups);
    const names = ['20261201-000001Z-aa', '20261201-000002Z-bb', '20261201-000003Z-cc', '20261201-000004Z-dd', '20261201-000005Z-manual'];
    for (const n of names) {
      writeFileSync(join(backups, `${n}.dump`), 'x');
      writeFileSync(join(backups, `${n}.dump.sha256`), 'x');
    }
    writeFileSync(join(backups, '20261201-000001Z-aa.dump.migrated'), 'release=20261201-000001Z-aa\n');
    const keep = db.dumpSteps(host(), { db: parseDatabaseUrl('postgresql://a:b@c/d'), dir: backups, name: 'x', keep: 2 }).find((s) => s.key === 'keep')!;
    const r = runSh(keep.commands.map(String).join('\n'));
    expect(r.stderr).toBe('');
    expect(
      readdirSync(backups)
        .filter((f) => f.endsWith('.dump'))
        .sort(),
    ).toEqual(['20261201-000001Z-aa.dump', '20261201-000004Z-dd.dump', '20261201-000005Z-manual.dump']);
    expect(readdirSync(backups)).not.toContain('20261201-000002Z-bb.dump.sha256');
    expect(r.stdout).toContain('kept 20261201-000001Z-aa.dump: the dump taken before the last migration');
  });
});
