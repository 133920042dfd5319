// Role pyenv against a real target: pyenv for the app user, CPython 3.11.2 built by
// python-build, applied twice (the second run changes nothing), then the version switched to
// 3.13.5 with 3.11.2 removed (seed 001), and pyenv_keep_only sweeping a stray version.
//
// This machine reaches neither GitHub nor python.org, so two stand-ins replace them; everything
// else (pyenv, python-build, the CPython sources, the builds) is real:
//  - github.com/pyenv/pyenv: a bare clone of the pyenv checkout at /root/.pyenv (same
//    repository, same commit), copied into the target as /srv/pyenv.git (pyenv_git_url).
//  - python.org: a python-build mirror directory (pyenv_python_mirror_url, file://) filled with
//    the upstream tarballs that Debian's source packages carry unchanged (`apt-get source
//    --download-only`: python3.11 from bookworm, python3.13 from trixie). Their sha256 are
//    checked against pyenv's own definitions, and python-build verifies them again.
//    Debian ships 3.11.2 as upstream's .tgz, while python-build asks for the .tar.xz wherever
//    tar handles xz; the 3.11.2 step sets _PYTHON_BUILD_FORCE_SKIP_XZ=1 (through
//    pyenv_python_build_env; pyenv's own CI uses it) so that python-build asks for the .tgz.
// Slow: two CPython builds on the machine's cores (minutes each).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh, startTarget, type TestTarget } from '../helpers/target.js';
import { changedIds, notOk, provisionItest as provision } from '../helpers/cli.js';
import { tempProject, writeInventory as writeTargetInventory } from '../helpers/project.js';

const PYENV_CHECKOUT = process.env.KEEL_TEST_PYENV_CHECKOUT ?? '/root/.pyenv';
const HAVE_PYENV = existsSync(join(PYENV_CHECKOUT, '.git'));
const DEFINITIONS = join(PYENV_CHECKOUT, 'plugins/python-build/share/python-build');

const MIRROR = '/srv/python-mirror';
const APP_HOME = '/home/app';
const PYENV_ROOT = `${APP_HOME}/.pyenv`;
const BUILD_TIMEOUT = 45 * 60_000;

/** The sha256 pyenv's definition expects for an upstream tarball (e.g. Python-3.11.2.tgz). */
function definitionSha(version: string, file: string): string {
  const def = readFileSync(join(DEFINITIONS, version), 'utf8');
  const m = new RegExp(`/${file.replace(/\./g, '\\.')}#([0-9a-f]{64})"`).exec(def);
  if (!m) throw new Error(`${file} not found in pyenv's definition ${join(DEFINITIONS, version)}`);
  return m[1]!;
}

/** The stand-in for python.org: upstream tarballs from Debian's source packages, in a
 *  python-build mirror (files named by their sha256), checked against pyenv's definitions. */
async function fillMirror(t: TestTarget): Promise<void> {
  const sources = '/etc/apt/sources.list.d/keel-test-sources.list';
  await sh(
    t,
    `set -e
    printf '%s\\n' 'deb-src http://deb.debian.org/debian bookworm main' 'deb-src http://deb.debian.org/debian trixie main' > ${sources}
    apt-get update -qq
    mkdir -p /srv/debian-src ${MIRROR}
    cd /srv/debian-src
    apt-get source --download-only -qq python3.11 python3.13 >/dev/null 2>&1
    rm ${sources}
    apt-get update -qq`,
  );
  const tarballs = [
    { orig: 'python3.11_3.11.2.orig.tar.gz', version: '3.11.2', upstream: 'Python-3.11.2.tgz' },
    { orig: 'python3.13_3.13.5.orig.tar.xz', version: '3.13.5', upstream: 'Python-3.13.5.tar.xz' },
  ];
  for (const { orig, version, upstream } of tarballs) {
    const sha = (await sh(t, `sha256sum /srv/debian-src/${orig} | cut -d' ' -f1`)).trim();
    expect(sha, `Debian's ${orig} is upstream's ${upstream} (pyenv's definition ${version})`).toBe(definitionSha(version, upstream));
    await sh(t, `cp /srv/debian-src/${orig} ${MIRROR}/${sha}`);
  }
  await sh(t, `chmod -R a+rX ${MIRROR}; rm -rf /srv/debian-src`);
}

/** The stand-in for github.com/pyenv/pyenv: a bare clone of the local checkout. */
async function copyPyenvClone(t: TestTarget, work: string): Promise<string> {
  const bare = join(work, 'pyenv.git');
  execFileSync('git', ['clone', '-q', '--bare', '--no-local', PYENV_CHECKOUT, bare]);
  await t.container.copyDirectoriesToContainer([{ source: bare, target: '/srv/pyenv.git' }]);
  // Owned by root, fetched by the app user: git refuses other users' repositories unless
  // listed as safe. A property of this stand-in, not of a clone from https.
  await sh(t, `chown -R root:root /srv/pyenv.git && git_cfg=/etc/gitconfig && printf '[safe]\\n\\tdirectory = /srv/pyenv.git\\n' >> $git_cfg`);
  return execFileSync('git', ['-C', PYENV_CHECKOUT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
}

function writeInventory(dir: string, t: TestTarget, vars: Record<string, unknown>): void {
  writeTargetInventory(dir, t, {
    host: 'py1',
    group: 'py',
    roles: ['base', 'pyenv'],
    vars: {
      pyenv_git_url: '/srv/pyenv.git',
      pyenv_python_mirror_url: `file://${MIRROR}`,
      pyenv_make_opts: '-j2',
      // CPython's own test suite is neither built nor installed: a third less build time, and
      // nothing the app or this test uses (a user option, see docs/roles/pyenv.md).
      pyenv_python_configure_opts: '--disable-test-modules',
      ...vars,
    },
  });
}

/** Seconds python-build took: from the later of the run's start and pyenv's checkout (the
 *  resource just before the build) to python-build's final bin/python link. */
async function buildSeconds(t: TestTarget, version: string, runStartedMs: number): Promise<string> {
  const out = await sh(t, `stat -c %Y ${PYENV_ROOT}/bin/pyenv ${PYENV_ROOT}/versions/${version}/bin/python`);
  const [checkout, done] = out.trim().split('\n').map(Number);
  return `${done! - Math.max(checkout!, Math.floor(runStartedMs / 1000))} s`;
}

/** Run as the app user in a login shell: what a person sees after `su - app` (seed 001). */
function asApp(t: TestTarget, script: string): Promise<string> {
  return sh(t, `runuser -l app -c ${`'${script.replace(/'/g, `'\\''`)}'`}`);
}

const skipReason = HAVE_PYENV ? '' : ` [SKIPPED: no pyenv git checkout at ${PYENV_CHECKOUT} to stand in for github.com/pyenv/pyenv]`;

describe.skipIf(!HAVE_PYENV)(
  'role pyenv on a real target: pyenv from a local clone standing in for github.com/pyenv/pyenv, ' +
    `CPython from Debian's source packages standing in for python.org${skipReason}`,
  () => {
    let target: TestTarget;
    let root: string;
    let work: string;
    let pyenvCommit: string;

    beforeAll(async () => {
      target = await startTarget({ name: 'pyenv' });
      root = tempProject('roles-pyenv');
      work = mkdtempSync(join(tmpdir(), 'keel-pyenv-clone-'));
      const started = Date.now();
      pyenvCommit = await copyPyenvClone(target, work);
      await fillMirror(target);
      console.log(`stand-ins ready (pyenv clone at ${pyenvCommit.slice(0, 7)}, CPython mirror): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
    afterAll(async () => {
      await target?.stop();
      for (const d of [root, work]) if (d) rmSync(d, { recursive: true, force: true });
    });

    it(
      '3.11.2: builds from the mirror, converges (2nd run 0 changed), the pinned Python runs for the app user',
      async () => {
        writeInventory(root, target, { pyenv_python_version: '3.11.2', pyenv_python_build_env: { _PYTHON_BUILD_FORCE_SKIP_XZ: '1' } });
        const started = Date.now();
        const first = await provision(root, '3.11.2 (1st run)');
        expect(changedIds(first)).toContain('pyenv/command:# pyenv install 3.11.2');
        console.log(`3.11.2 build: ${await buildSeconds(target, '3.11.2', started)}`);
        const second = await provision(root, '3.11.2 (2nd run)');
        expect(second.changed, JSON.stringify(notOk(second), null, 1)).toBe(0);

        // pyenv is the stand-in's commit, owned by the app user.
        expect(await sh(target, `git -c safe.directory='*' -C ${PYENV_ROOT} rev-parse HEAD; stat -c %U ${PYENV_ROOT} ${PYENV_ROOT}/versions/3.11.2`)).toBe(
          `${pyenvCommit}\napp\napp\n`,
        );
        const v = await sh(
          target,
          `runuser -u app -- ${PYENV_ROOT}/versions/3.11.2/bin/python ` +
            "-c 'import sys, ssl, sqlite3, ctypes, lzma, bz2, readline, uuid; print(sys.version); print(ssl.OPENSSL_VERSION)'",
        );
        expect(v).toMatch(/^3\.11\.2 /);
        expect(v).toMatch(/OpenSSL 3\./);
        // The global version, and pyenv in the app user's login shell (seed 001's check).
        expect(await sh(target, `cat ${PYENV_ROOT}/version`)).toBe('3.11.2\n');
        expect(await asApp(target, 'pyenv version-name; python -V; command -v python')).toBe(`3.11.2\nPython 3.11.2\n${PYENV_ROOT}/shims/python\n`);
      },
      BUILD_TIMEOUT,
    );

    it(
      'switch to 3.13.5 removing 3.11.2: converges, 3.13.5 runs, 3.11.2 is gone',
      async () => {
        writeInventory(root, target, { pyenv_python_version: '3.13.5', pyenv_remove_versions: ['3.11.2'] });
        const started = Date.now();
        const first = await provision(root, '3.13.5 (1st run)');
        const ids = changedIds(first);
        expect(ids).toContain('pyenv/command:# pyenv install 3.13.5');
        expect(ids).toContain(`pyenv/file:${PYENV_ROOT}/version`);
        expect(ids).toContain(`pyenv/command:"$PYENV_ROOT/bin/pyenv" uninstall --force '3.11.2'`);
        console.log(`3.13.5 build: ${await buildSeconds(target, '3.13.5', started)}`);
        const second = await provision(root, '3.13.5 (2nd run)');
        expect(second.changed, JSON.stringify(notOk(second), null, 1)).toBe(0);

        const v = await sh(target, `runuser -u app -- ${PYENV_ROOT}/versions/3.13.5/bin/python -c 'import sys, ssl, sqlite3; print(sys.version)'`);
        expect(v).toMatch(/^3\.13\.5 /);
        expect(await sh(target, `ls ${PYENV_ROOT}/versions`)).toBe('3.13.5\n');
        expect(await asApp(target, 'pyenv version-name; python -V; pyenv versions --bare')).toBe('3.13.5\nPython 3.13.5\n3.13.5\n');
      },
      BUILD_TIMEOUT,
    );

    it('pyenv_keep_only removes every other version (here a stray one), then changes nothing', async () => {
      await sh(target, `runuser -u app -- cp -a ${PYENV_ROOT}/versions/3.13.5 ${PYENV_ROOT}/versions/3.12.0-stray`);
      writeInventory(root, target, { pyenv_python_version: '3.13.5', pyenv_keep_only: true });
      const first = await provision(root, 'keep only 3.13.5 (1st run)');
      expect(changedIds(first)).toEqual([expect.stringMatching(/^pyenv\/command:for d in /)]);
      expect(await sh(target, `ls ${PYENV_ROOT}/versions`)).toBe('3.13.5\n');
      const second = await provision(root, 'keep only 3.13.5 (2nd run)');
      expect(second.changed, JSON.stringify(notOk(second), null, 1)).toBe(0);
    });
  },
);
