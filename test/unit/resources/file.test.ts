import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileType, parseShaLine, sha256 } from '../../../src/resources/file.js';
import { quote } from '../../../src/shell/quote.js';
import { normalizeMode } from '../../../src/resources/paths.js';
import { ConfigError } from '../../../src/errors.js';
import { NASTY, applySh, commandsOf, ctx, decide, expectOk, expectShellSyntax, items, probeHere, tempDir } from './helpers.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const reg = (extra: Record<string, string> = {}) => ({ type: 'regular file', user: 'root', uid: '0', group: 'root', gid: '0', mode: '644', ...extra });

describe('file decide', () => {
  it('converged: same content, owner, group, mode -> ok without commands', () => {
    expectOk(decide(fileType, { path: '/etc/x', content: 'hi\n', owner: 'root', group: 0, mode: '0644' }, reg({ sha256: sha256('hi\n') })));
  });
  it('converged: attributes only, content unmanaged', () => {
    expectOk(decide(fileType, { path: '/etc/x', mode: '644' }, reg()));
  });
  it('creates a missing file with content', () => {
    const d = decide(fileType, { path: '/etc/x', content: 'hi\n', mode: '0600' }, {});
    expect(d.reason).toContain('create');
    const c = commandsOf(d).join('\n');
    expect(c).toContain('chmod 0600 -- "$keel_tmp"');
    expect(c).toContain('mv -f -- "$keel_tmp" /etc/x');
    expectShellSyntax(c);
  });
  it('rewrites on content change, keeping owner and mode by reference', () => {
    const c = commandsOf(decide(fileType, { path: '/etc/x', content: 'new' }, reg({ sha256: sha256('old') }))).join('\n');
    expect(c).toContain('chown --reference=/etc/x');
    expect(c).toContain(Buffer.from('new').toString('base64'));
  });
  it('fixes attributes in place without rewriting', () => {
    const d = decide(fileType, { path: '/etc/x', content: 'a', owner: 'www-data', mode: '0640' }, reg({ sha256: sha256('a') }));
    expect(commandsOf(d)).toEqual(['chown www-data -- /etc/x', 'chmod 0640 -- /etc/x']);
  });
  it('absent: ok when missing, rm when present, error for a directory', () => {
    expectOk(decide(fileType, { path: '/etc/x', state: 'absent' }, {}));
    expect(commandsOf(decide(fileType, { path: '/etc/x', state: 'absent' }, reg()))).toEqual(['rm -f -- /etc/x']);
    expect(() => decide(fileType, { path: '/etc/x', state: 'absent' }, reg({ type: 'directory' }))).toThrow(ConfigError);
  });
  it('validate with %s runs on the temp file before the rename', () => {
    const c = commandsOf(decide(fileType, { path: '/etc/x', content: 'a', validate: 'visudo -cf %s' }, {}));
    expect(c).toContain('visudo -cf "$keel_tmp"');
    expectShellSyntax(c.join('\n'));
  });
  it('validate without %s restores the old file', () => {
    const c = commandsOf(decide(fileType, { path: '/etc/x', content: 'a', validate: 'nginx -t' }, reg())).join('\n');
    expect(c).toContain('mv -f -- "$keel_bak" /etc/x');
    expectShellSyntax(c);
  });
  it('quotes nasty paths and owners', () => {
    for (const v of NASTY.filter((x) => !x.includes('\n'))) {
      const path = `/tmp/${v}`;
      const c = commandsOf(decide(fileType, { path, content: v, owner: v }, reg())).join('\n');
      expect(c).toContain(quote(path));
      expect(c).toContain(quote(v));
      expectShellSyntax(c);
      expectShellSyntax(fileType.probe(items(fileType, [{ path, content: v }]), { wantDiff: true }));
    }
  });
  it('rejects relative paths, newlines and bad modes', () => {
    expect(() => decide(fileType, { path: 'etc/x' }, {})).toThrow(ConfigError);
    expect(() => decide(fileType, { path: '/a\nb' }, {})).toThrow(ConfigError);
    expect(() => decide(fileType, { path: '/a', mode: 'u=rw' }, {})).toThrow(ConfigError);
  });
  it('diff carries old and new content', () => {
    const d = fileType.decide(fileType.normalize!({ path: '/x', content: 'new\n' }), reg({ sha256: 'x', old: Buffer.from('old\n').toString('base64') }), {
      wantDiff: true,
    });
    expect(d.kind === 'change' && d.diff).toEqual({ path: '/x', before: 'old\n', after: 'new\n', sensitive: undefined });
  });
});

describe('modes', () => {
  it('reads YAML 1.2 integers by their digits (mode: 0644 parses as 644)', () => {
    expect(normalizeMode(644)).toBe('0644');
    expect(normalizeMode(755)).toBe('0755');
    expect(normalizeMode('644')).toBe('0644');
    expect(normalizeMode('2775')).toBe('2775');
    expect(() => normalizeMode(999)).toThrow(ConfigError);
  });
});

describe('file probe on this machine', () => {
  it('parses stat and sha256sum, including a name with a backslash', () => {
    const a = join(dir, 'a file');
    const b = join(dir, 'back\\slash');
    writeFileSync(a, 'hello\n');
    writeFileSync(b, 'x');
    mkdirSync(join(dir, 'd'));
    const facts = probeHere(fileType, [
      { path: a, content: 'hello\n' },
      { path: b, content: 'x' },
      { path: join(dir, 'missing'), content: '' },
    ]);
    expect(facts.get('k0')).toMatchObject({ type: 'regular file', sha256: sha256('hello\n') });
    expect(facts.get('k1')?.sha256).toBe(sha256('x'));
    expect(facts.get('k2')).toEqual({});
    expectOk(fileType.decide(fileType.normalize!({ path: b, content: 'x' }), facts.get('k1')!, ctx));
  });
  it('with --diff, old contents travel for changed files only, and an unchanged one costs no process', () => {
    const at = join(dir, 'diffs');
    mkdirSync(at);
    // wc and sha256sum of one file at a time are what the slow path runs: count them.
    const bin = join(at, 'bin');
    mkdirSync(bin);
    const log = join(at, 'calls');
    for (const tool of ['wc', 'sha256sum'])
      writeFileSync(join(bin, tool), `#!/bin/sh\n[ $# -eq 0 ] || [ "$1" = -c ] && echo ${tool} >> ${quote(log)}\nexec /usr/bin/${tool} "$@"\n`, {
        mode: 0o755,
      });
    const same = join(at, 'same.conf');
    const changed = join(at, 'changed.conf');
    const odd = join(at, 'back\\slash');
    writeFileSync(same, 'a\n');
    writeFileSync(changed, 'old\n');
    writeFileSync(odd, 'z\n');
    const ps = [
      { path: same, content: 'a\n' },
      { path: changed, content: 'new\n' },
      { path: odd, content: 'z\n' },
      { path: join(at, 'missing'), content: 'm\n' },
    ];
    const its = items(fileType, ps);
    const script = `set +e\nPATH=${quote(bin)}:$PATH\n${fileType.probe(its, { wantDiff: true })}`;
    const facts = fileType.parse!(spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout, its);
    expect(facts.get('k0')).toMatchObject({ sha256: sha256('a\n') });
    expect(facts.get('k0')?.old).toBeUndefined();
    expect(Buffer.from(facts.get('k1')?.old ?? '', 'base64').toString()).toBe('old\n');
    // A name sha256sum escapes is looked at on its own, and found unchanged.
    expect(facts.get('k2')?.old).toBeUndefined();
    expect(facts.get('k3')).toEqual({});
    // The changed file and the odd name: one wc and one sha256sum each; the unchanged, none.
    expect(readFileSync(log, 'utf8').trim().split('\n').sort()).toEqual(['sha256sum', 'sha256sum', 'wc', 'wc']);
  });
  it('parseShaLine undoes sha256sum escaping', () => {
    expect(parseShaLine(`\\${'a'.repeat(64)}  /tmp/b\\\\s`)).toEqual({ sha: 'a'.repeat(64), path: '/tmp/b\\s' });
    expect(parseShaLine(`${'b'.repeat(64)}  /tmp/plain`)).toEqual({ sha: 'b'.repeat(64), path: '/tmp/plain' });
  });
  it('applies and then converges (temp dir)', () => {
    const path = join(dir, `it's $(x)`);
    const p = { path, content: 'one\ntwo\n', mode: '0640' };
    const d = decide(fileType, p, probeHere(fileType, [p]).get('k0'));
    const r = applySh(commandsOf(d), dir);
    expect(r.stderr).toBe('');
    expect(readFileSync(path, 'utf8')).toBe('one\ntwo\n');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expectOk(decide(fileType, p, probeHere(fileType, [p]).get('k0')));
  });
  it('a missing parent directory fails naming it and the fix, not as a raw mktemp error', () => {
    const missing = join(dir, `no such 'dir'`);
    const r = applySh(commandsOf(decide(fileType, { path: join(missing, 'x.conf'), content: 'x' }, {})), dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`keel: ${missing} does not exist: add a directory resource for it before this file\n`);
    writeFileSync(join(dir, 'plain'), '');
    const inFile = applySh(commandsOf(decide(fileType, { path: join(dir, 'plain', 'x.conf'), content: 'x' }, {})), dir);
    expect(inFile.status).toBe(1);
    expect(inFile.stderr).toBe(`keel: ${join(dir, 'plain')} is not a directory: cannot put ${join(dir, 'plain', 'x.conf')} in it\n`);
  });
});
