// Deploy only if newer: the decision (pure) for every case, and git's answers on a real
// repository, a shallow clone of it, and a commit it has not fetched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNewer, newerVerdict, type Ancestry } from '../../src/deploy/newer.js';
import { isAncestor, resolveLocal, type Source } from '../../src/deploy/source.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const src = (sha: string, kind: Source['kind'] = 'local'): Source => ({ repo: '/r', kind, branch: 'main', sha, subdir: '' });
const live = (sha: string, host = 'web1') => ({ host, release: `20260101-000000Z-${sha.slice(0, 12)}`, sha });
const o = { env: 'staging', shallow: false, ref: false };

describe('newerVerdict', () => {
  it('deploys when nothing is live, when the live commit is the same, or when it is not an ancestor', () => {
    expect(newerVerdict(src(A), [live('')], new Map(), o)).toEqual({ ok: true });
    expect(newerVerdict(src(A), [live(A)], new Map(), o)).toEqual({ ok: true });
    expect(newerVerdict(src(A), [live(B)], new Map([[B, false]]), o)).toEqual({ ok: true });
  });

  it('refuses a commit the live one already contains, naming the hosts, the release and the way back', () => {
    const v = newerVerdict(src(A), [live(B, 'web1'), live(B, 'worker1')], new Map([[B, true]]), o);
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.message).toBe(
      `refusing to deploy main @ ${A.slice(0, 12)}: it is older than what web1, worker1 run (release 20260101-000000Z-${B.slice(0, 12)}, ` +
        `commit ${B.slice(0, 12)}, which already contains it); deploying it would take back every change since`,
    );
    expect(v.hint).toMatch(/keel rollback staging .*--allow-older/);
  });

  it('refuses when it cannot tell (the live commit is not here), saying how to fetch it in CI', () => {
    const ancestry: Ancestry = new Map([[B, null]]);
    const v = newerVerdict(src(A), [live(B)], ancestry, { ...o, shallow: true });
    expect(v).toMatchObject({ ok: false, message: expect.stringMatching(/cannot tell .* not in this checkout \(a shallow clone\)/) });
    expect(!v.ok && v.hint).toMatch(/fetch-depth: 0.*GIT_DEPTH: 0.*--allow-older/);
  });

  it('a git URL: says what it cannot check, and deploys', () => {
    expect(newerVerdict(src(A, 'url'), [live(B)], new Map(), o)).toMatchObject({ ok: true, note: expect.stringMatching(/branch's tip on the git server now/) });
    const withRef = newerVerdict(src(A, 'url'), [live(B)], new Map(), { ...o, ref: true });
    expect(withRef).toMatchObject({ ok: true, note: expect.stringMatching(/git URL, and this machine has not its history$/) });
  });
});

describe('git ancestry', () => {
  let dir: string;
  let repo: string;
  const shas: string[] = [];
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-C', cwd, '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false', ...args], { encoding: 'utf8' }).trim();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-newer-'));
    repo = join(dir, 'repo');
    git(dir, 'init', '-q', '-b', 'main', repo);
    for (const n of [1, 2, 3]) {
      writeFileSync(join(repo, 'f'), String(n));
      git(repo, 'add', 'f');
      git(repo, 'commit', '-q', '-m', `c${n}`);
      shas.push(git(repo, 'rev-parse', 'HEAD'));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers yes, no, and "not known here"', async () => {
    const s = { ...src(shas[0]!), repo };
    expect(await isAncestor(s, shas[0]!, shas[2]!)).toBe(true);
    expect(await isAncestor(s, shas[2]!, shas[0]!)).toBe(false);
    expect(await isAncestor(s, shas[0]!, 'c'.repeat(40))).toBe(null);
  });

  it('checkNewer: refuses c1 over c3 (exit 1), deploys c3 over c1, and --allow-older skips the check', async () => {
    const err = await checkNewer({ ...src(shas[0]!), repo }, [live(shas[2]!)], { env: 'staging', allowOlder: false, ref: true }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^refusing to deploy main @ \w{12}: it is older than what web1 runs/);
    expect((err as { exitCode: number }).exitCode).toBe(1);
    expect(await checkNewer({ ...src(shas[2]!), repo }, [live(shas[0]!)], { env: 'staging', allowOlder: false, ref: false })).toBeUndefined();
    expect(await checkNewer({ ...src(shas[0]!), repo }, [live(shas[2]!)], { env: 'staging', allowOlder: true, ref: false })).toMatch(/--allow-older/);
  });

  it("a CI checkout with the branch as origin/<branch> only (GitLab's detached HEAD) resolves --branch and --ref", async () => {
    const ci = join(dir, 'gitlab');
    git(dir, 'init', '-q', ci);
    git(ci, 'fetch', '-q', `file://${repo}`, '+refs/heads/main:refs/remotes/origin/main');
    git(ci, 'checkout', '-q', '--detach', shas[1]!);
    expect(await resolveLocal(ci, '', 'main', shas[1], '')).toMatchObject({ branch: 'main', sha: shas[1] });
    expect(await resolveLocal(ci, '', 'main', undefined, '')).toMatchObject({ branch: 'main', sha: shas[2] });
  });

  it('in a shallow clone (CI) without the live commit: cannot tell, refused with the fetch hint', async () => {
    const shallow = join(dir, 'shallow');
    execFileSync('git', ['clone', '-q', '--depth', '1', `file://${repo}`, shallow]);
    // The clone has c3 only; c2 is live (deployed from elsewhere): c3 is newer, but this checkout cannot know.
    const err = await checkNewer({ ...src(shas[2]!), repo: shallow }, [live(shas[1]!)], { env: 'staging', allowOlder: false, ref: true }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/cannot tell whether main @ \w{12} is newer .* \(a shallow clone\)/);
  });
});
