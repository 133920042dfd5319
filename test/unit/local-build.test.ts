// deploy_local_build on the controller: the commands run in a clean copy of the commit (not the
// working tree) with the release stamped in their environment and without keel's secrets; what
// they make is added to git's archive, which GNU tar reads back, byte for byte the same for
// the same commit and outputs. Failures say which command, its exit code and last lines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archive, type Source } from '../../src/deploy/source.js';
import { LocalBuildError, localBuild, type LocalBuildSettings } from '../../src/deploy/local-build.js';
import { appendToTar, tarEnd } from '../../src/deploy/tar.js';
import { deployConfig } from '../../src/deploy/config.js';
import type { HostPlan } from '../../src/engine/plan.js';

let dir: string;
let repo: string;
let src: Source;
const git = (...args: string[]) =>
  execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false', ...args], { encoding: 'utf8' }).trim();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-local-build-'));
  repo = join(dir, 'repo');
  mkdirSync(join(repo, 'app', 'front'), { recursive: true });
  git('init', '-q', '-b', 'main');
  writeFileSync(join(repo, 'app', 'manage.py'), 'print("hi")\n');
  writeFileSync(join(repo, 'app', 'front', 'main.js'), 'console.log("v1")\n');
  writeFileSync(join(repo, '.gitignore'), 'dist/\n');
  git('add', '-A');
  git('commit', '-q', '-m', 'v1');
  src = { repo, kind: 'local', branch: 'main', sha: git('rev-parse', 'HEAD'), subdir: 'app' };
  // Not committed: a local build must not see it.
  writeFileSync(join(repo, 'app', 'front', 'main.js'), 'console.log("uncommitted")\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settings = (commands: string[], outputs: string[]): LocalBuildSettings => ({ commands, outputs });
const opts = { env: 'staging', release: '20260101-000000Z-abc', mask: (s: string) => s.replaceAll('s3cret', '******') };
/** What GNU tar lists of a gzipped archive, and one file's content. */
const tarList = (gz: Buffer) => execFileSync('tar', ['-tzvf', '-'], { input: gz, encoding: 'utf8' });
const tarCat = (gz: Buffer, path: string) => execFileSync('tar', ['-xzOf', '-', path], { input: gz, encoding: 'utf8' });

describe('deploy_local_build', () => {
  const BUILD = [
    'mkdir -p dist/js && { cat front/main.js; echo "release=$KEEL_RELEASE sha=$KEEL_SHA branch=$KEEL_BRANCH env=$KEEL_ENV"; } > dist/js/app.js',
    'printf "%s|%s" "${KEEL_AGE_IDENTITY:-none}" "${KEEL_SSH_PRIVATE_KEY:-none}" > dist/env-seen.txt; echo "built; the vault says s3cret"',
  ];

  it('runs in a clean copy of the commit, stamped with the release, without keel secrets; outputs go in the archive', async () => {
    const saved = { id: process.env.KEEL_AGE_IDENTITY, key: process.env.KEEL_SSH_PRIVATE_KEY };
    process.env.KEEL_AGE_IDENTITY = 'AGE-SECRET-KEY-1TEST';
    process.env.KEEL_SSH_PRIVATE_KEY = 'a key';
    const steps: string[] = [];
    // Its own temp dir, to see that the build's copy is removed.
    const savedTmp = process.env.TMPDIR;
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    process.env.TMPDIR = tmp;
    let b;
    try {
      b = await localBuild(src, settings(BUILD, ['dist/']), { ...opts, onStep: (st) => steps.push(`${st.name} ${st.status}`) });
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
      for (const [k, v] of [
        ['KEEL_AGE_IDENTITY', saved.id],
        ['KEEL_SSH_PRIVATE_KEY', saved.key],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
    expect(steps).toEqual(['build-1 ok', 'build-2 ok', 'outputs ok']);
    expect(b.report.steps[1]!.output).toBe('built; the vault says ******\n');
    expect(b.report.outputs).toEqual([{ path: 'dist', files: 2, bytes: expect.any(Number) }]);
    const gz = await archive(src, b.entries);
    const app = tarCat(gz, 'dist/js/app.js');
    expect(app).toBe(`console.log("v1")\nrelease=${opts.release} sha=${src.sha} branch=main env=staging\n`);
    expect(tarCat(gz, 'dist/env-seen.txt')).toBe('none|none');
    const listing = tarList(gz);
    // The commit's files (the subdir's content at the root), then the outputs, dated like them.
    expect(listing).toMatch(/ manage\.py\n/);
    expect(listing).toMatch(/^drwxrwxr-x root\/root +0 \S+ \S+ dist\/$/m);
    expect(listing).toMatch(/^-rw-rw-r-- root\/root +\d+ \S+ \S+ dist\/js\/app\.js$/m);
    expect(new Set([...listing.matchAll(/ (\d{4}-\d\d-\d\d \d\d:\d\d) /g)].map((m) => m[1])).size).toBe(1);
    // Nothing of the build's copy is left behind.
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('the same commit and the same outputs give the same archive, byte for byte', async () => {
    const first = await localBuild(src, settings(['mkdir -p dist/b dist/a && echo 1 > dist/b/x && echo 2 > dist/a/y && chmod +x dist/a/y'], ['dist']), opts);
    // Made in another order, at another time: the same files.
    await new Promise((r) => setTimeout(r, 1100));
    const second = await localBuild(src, settings(['mkdir -p dist/a dist/b && echo 2 > dist/a/y && chmod +x dist/a/y && echo 1 > dist/b/x'], ['dist/']), opts);
    const sum = async (b: typeof first) =>
      createHash('sha256')
        .update(await archive(src, b.entries))
        .digest('hex');
    expect(await sum(second)).toBe(await sum(first));
    expect(tarList(await archive(src, first.entries))).toMatch(/^-rwxrwxr-x root\/root +2 \S+ \S+ dist\/a\/y$/m);
  });

  it('a failing command: exit 2, the command, its exit code and last lines; nothing after it runs', async () => {
    const err = await localBuild(src, settings(['echo compiling; echo "error TS2304: cannot find name" >&2; exit 3', 'touch ran'], []), opts).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LocalBuildError);
    expect((err as LocalBuildError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(
      /^local build failed at deploy_local_build\[0\] `echo compiling;.*` \(exit 3\) in app of \w{12}:\n {2}\| compiling\n {2}\| error TS2304/,
    );
    expect((err as Error).message).toMatch(/nothing was shipped, no host was touched$/);
  });

  it('an output the build did not make, or a symbolic link, is an error naming it', async () => {
    const missing = await localBuild(src, settings(['true'], ['static/dist']), opts).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/^deploy_local_build_outputs: static\/dist was not made/);
    const link = await localBuild(src, settings(['ln -s manage.py out'], ['out']), opts).catch((e: unknown) => e);
    expect((link as Error).message).toMatch(/out is a symbolic link/);
  });
});

describe('the tar writer', () => {
  it('adds long paths (ustar prefix, then a pax header) that GNU tar reads back', () => {
    const base = execFileSync('git', ['-C', repo, 'archive', '--format=tar', src.sha]);
    const split = `${'d'.repeat(120)}/${'f'.repeat(90)}.js`;
    const pax = `${'p'.repeat(80)}/${'q'.repeat(130)}.js`;
    const tar = appendToTar(
      base,
      [
        { path: split, type: 'file', data: Buffer.from('split') },
        { path: pax, type: 'file', data: Buffer.from('pax') },
        { path: 'é/ü.txt', type: 'file', data: Buffer.from('utf8') },
      ],
      1_700_000_000,
    );
    expect(tarEnd(tar)).toBeLessThan(tar.length);
    const x = join(dir, 'x');
    mkdirSync(x);
    execFileSync('tar', ['-xf', '-', '-C', x], { input: tar });
    expect(readFileSync(join(x, split), 'utf8')).toBe('split');
    expect(readFileSync(join(x, pax), 'utf8')).toBe('pax');
    expect(readFileSync(join(x, 'é/ü.txt'), 'utf8')).toBe('utf8');
    expect(readFileSync(join(x, 'app', 'manage.py'), 'utf8')).toBe('print("hi")\n');
  });
});

describe('settings', () => {
  const plan = (vars: Record<string, unknown>) =>
    ({ host: { name: 'web1', roles: ['deploy'], groups: [], vars: {}, connection: {} }, vars: { app_root: '/srv/app', ...vars } }) as unknown as HostPlan;
  it('outputs must be inside the app directory; outputs need commands; a git URL cannot build here', () => {
    expect(deployConfig([plan({ deploy_local_build: ['make'], deploy_local_build_outputs: ['./static/dist/'] })], 'inv.yaml').localBuild).toEqual({
      commands: ['make'],
      outputs: ['static/dist'],
    });
    for (const bad of ['../x', '/abs', 'a/../b', '.']) {
      expect(() => deployConfig([plan({ deploy_local_build: ['make'], deploy_local_build_outputs: [bad] })], 'inv.yaml'), bad).toThrow(
        /^inv\.yaml: deploy_local_build_outputs: ".*" is not a path inside the app's directory/,
      );
    }
    expect(() => deployConfig([plan({ deploy_local_build_outputs: ['dist'] })], 'inv.yaml')).toThrow(/deploy_local_build has no command/);
    expect(() => deployConfig([plan({ deploy_local_build: ['make'], deploy_repo: 'git@github.com:o/r.git' })], 'inv.yaml')).toThrow(/deploy_repo is a git URL/);
  });
});
