import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitType, type GitParams } from '../../../src/resources/git.js';
import { quote } from '../../../src/shell/quote.js';
import { ConfigError } from '../../../src/errors.js';
import { applySh, commandsOf, decide, expectOk, expectShellSyntax, items, probeHere, tempDir } from './helpers.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const T = 'c'.repeat(40);

function parse(p: GitParams, out: string) {
  return gitType.parse!(out, items(gitType, [p])).get('k0')!;
}

describe('git parse/decide (fixtures)', () => {
  const repo = 'https://example.org/app.git';
  it('default branch via --symref', () => {
    const f = parse({ repo, dest: '/srv/app' }, `k0\thead\t${A}\nk0\torigin\t${repo}\nk0\tref\tref: refs/heads/main\tHEAD\nk0\tref\t${A}\tHEAD\n`);
    expect(f).toEqual({ head: A, origin: repo, want: A, kind: 'branch', branch: 'main' });
    expectOk(decide(gitType, { repo, dest: '/srv/app' }, f));
  });
  it('tag: the peeled commit wins', () => {
    const f = parse({ repo, dest: '/d', version: 'v1' }, `k0\tref\t${B}\trefs/tags/v1\nk0\tref\t${T}\trefs/tags/v1^{}\n`);
    expect(f).toEqual({ want: T, kind: 'tag' });
  });
  it('clone when absent; branch is a local branch reset to origin', () => {
    const p = { repo, dest: '/srv/app', version: 'main', depth: 1 };
    const c = commandsOf(decide(gitType, p, parse(p, `k0\tref\t${A}\trefs/heads/main\n`)));
    const all = c.join('\n');
    expect(all).toContain('git init -q -- /srv/app');
    expect(all).toContain(`config remote.origin.url ${repo}`);
    expect(all).toContain(`fetch -q --depth 1 origin +refs/heads/main:refs/remotes/origin/main`);
    expect(all).toContain('checkout -q -B main refs/remotes/origin/main');
    expectShellSyntax(all);
  });
  it('update when HEAD differs; force discards local changes', () => {
    const p = { repo, dest: '/d', version: 'v1', force: true };
    const d = decide(gitType, p, { head: A, origin: repo, want: T, kind: 'tag', dirty: '' });
    expect(d.reason).toContain('-> v1');
    expect(commandsOf(d).join('\n')).toContain(`checkout -q -f --detach 'refs/tags/v1^{commit}'`);
    expect(decide(gitType, p, { head: T, origin: repo, want: T, kind: 'tag', dirty: ' M x' }).reason).toContain('discard local changes');
    expectOk(decide(gitType, p, { head: T, origin: repo, want: T, kind: 'tag', dirty: '' }));
  });
  it('commit versions need no network; short shas match by prefix', () => {
    expectOk(decide(gitType, { repo, dest: '/d', version: 'aaaaaaa' }, { head: A, origin: repo }));
    const c = commandsOf(decide(gitType, { repo, dest: '/d', version: B }, { head: A, origin: repo })).join('\n');
    expect(c).toContain(`checkout -q --detach ${B}`);
    expect(gitType.probe(items(gitType, [{ repo, dest: '/d', version: B }]), { wantDiff: false })).not.toContain('ls-remote');
  });
  it('origin changed -> change', () => {
    expect(decide(gitType, { repo, dest: '/d', version: 'main' }, { head: A, origin: 'git@old:x', want: A, kind: 'branch' }).reason).toContain(
      'origin git@old:x',
    );
  });
  it('unresolvable (no network at probe) -> fetch and checkout FETCH_HEAD', () => {
    const d = decide(gitType, { repo, dest: '/d', version: 'main' }, { head: A, origin: repo });
    expect(commandsOf(d).join('\n')).toContain('checkout -q --detach FETCH_HEAD');
  });
  it('as owner: runuser, and the dest is created for it', () => {
    const all = commandsOf(decide(gitType, { repo, dest: '/srv/my app', owner: 'deploy' }, {})).join('\n');
    expect(all).toContain(`chown -- deploy '/srv/my app'`);
    expect(all).toContain(`runuser -u deploy -- env GIT_TERMINAL_PROMPT=0`);
    expect(all).toContain(quote('/srv/my app'));
    expectShellSyntax(all);
  });
  it('rejects option-like and invalid values', () => {
    expect(() => decide(gitType, { repo: '--upload-pack=x', dest: '/d' }, {})).toThrow(ConfigError);
    expect(() => decide(gitType, { repo, dest: '/d', version: 'a b' }, {})).toThrow(ConfigError);
    expect(() => decide(gitType, { repo, dest: '/d', version: '-x' }, {})).toThrow(ConfigError);
  });
  it('probe quotes nasty repo/dest', () => {
    const s = gitType.probe(
      items(gitType, [
        { repo: `/tmp/it's $(x)`, dest: `/tmp/"d" $(y)`, force: true },
        { repo, dest: '/d', version: 'v1' },
      ]),
      { wantDiff: false },
    );
    expect(s.text).toContain(quote(`/tmp/it's $(x)`));
    expect(s.text).toContain(`timeout 60 env GIT_TERMINAL_PROMPT=0`);
    expectShellSyntax(s);
  });
});

describe('git on this machine (a local repository, no network)', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.email=k@e', '-c', 'user.name=k', ...a], { encoding: 'utf8' }).trim();

  it('clones, converges, follows a new commit, checks out a tag', () => {
    const src = join(dir, 'src repo');
    git('init', '-q', '-b', 'main', src);
    writeFileSync(join(src, 'f'), '1');
    git('-C', src, 'add', 'f');
    git('-C', src, 'commit', '-q', '-m', 'one');
    git('-C', src, 'tag', '-a', 'v1', '-m', 'v1');
    const dest = join(dir, `it's dest`);
    const converge = (p: GitParams) => {
      const d = decide(gitType, p, probeHere(gitType, [p]).get('k0'));
      if (d.kind === 'change') {
        const r = applySh(d.commands, dir);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
      }
      expectOk(decide(gitType, p, probeHere(gitType, [p]).get('k0')));
    };
    converge({ repo: src, dest });
    expect(git('-C', dest, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('main');
    writeFileSync(join(src, 'f'), '2');
    git('-C', src, 'commit', '-q', '-am', 'two');
    expect(decide(gitType, { repo: src, dest }, probeHere(gitType, [{ repo: src, dest }]).get('k0')).kind).toBe('change');
    converge({ repo: src, dest, depth: 1 });
    expect(git('-C', dest, 'rev-parse', 'HEAD')).toBe(git('-C', src, 'rev-parse', 'HEAD'));
    converge({ repo: src, dest, version: 'v1' });
    expect(git('-C', dest, 'rev-parse', 'HEAD')).toBe(git('-C', src, 'rev-parse', 'v1^{commit}'));
    writeFileSync(join(dest, 'f'), 'local change');
    converge({ repo: src, dest, version: 'main', force: true });
    expect(git('-C', dest, 'status', '--porcelain')).toBe('');
  });
});
