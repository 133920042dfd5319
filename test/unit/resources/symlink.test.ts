import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseQuotedNames, symlinkType } from '../../../src/resources/symlink.js';
import { quote } from '../../../src/shell/quote.js';
import { ConfigError } from '../../../src/errors.js';
import { NASTY, applySh, commandsOf, decide, expectOk, expectShellSyntax, items, probeHere, tempDir } from './helpers.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const link = (target: string) => ({ type: 'symbolic link', target });

describe('symlink decide', () => {
  it('converged', () => {
    expectOk(decide(symlinkType, { path: '/etc/nginx/sites-enabled/app', target: '../sites-available/app' }, link('../sites-available/app')));
  });
  it('creates and retargets', () => {
    const c = commandsOf(decide(symlinkType, { path: '/l', target: '/t' }, {}));
    expect(c.at(-1)).toBe('ln -sfn -- /t /l');
    const r = decide(symlinkType, { path: '/l', target: '/t' }, link('/old'));
    expect(r.reason).toContain('/old');
    expectShellSyntax(commandsOf(r).join('\n'));
  });
  it('a file in the way: error without force, replaced with force', () => {
    expect(() => decide(symlinkType, { path: '/l', target: '/t' }, { type: 'regular file' })).toThrow(ConfigError);
    const c = commandsOf(decide(symlinkType, { path: '/l', target: '/t', force: true }, { type: 'regular file' }));
    expect(c.join('\n')).toContain('rmdir -- /l');
  });
  it('absent', () => {
    expectOk(decide(symlinkType, { path: '/l', state: 'absent' }, {}));
    expectOk(decide(symlinkType, { path: '/l', state: 'absent' }, { type: 'directory' }));
    expect(commandsOf(decide(symlinkType, { path: '/l', state: 'absent' }, link('/t')))[0]).toContain('rm -f -- /l');
  });
  it('target is required when present', () => {
    expect(() => decide(symlinkType, { path: '/l' }, {})).toThrow(ConfigError);
  });
  it('quotes nasty values', () => {
    for (const v of NASTY) {
      const path = `/srv/${v.replace('\n', '_')}`;
      const c = commandsOf(decide(symlinkType, { path, target: v }, {})).join('\n');
      expect(c).toContain(quote(path));
      expect(c).toContain(quote(v));
      expectShellSyntax(c);
      expectShellSyntax(symlinkType.probe(items(symlinkType, [{ path, target: v }]), { wantDiff: false }));
    }
  });
  it('parses stat %N in the c quoting style', () => {
    expect(parseQuotedNames('"/a b" -> "x\\"y\\nz\\\\"')).toEqual(['/a b', 'x"y\nz\\']);
    expect(parseQuotedNames('"/tmp/\\303\\251"')).toEqual(['/tmp/é']);
    expect(parseQuotedNames('"/f"')).toEqual(['/f']);
  });
});

describe('symlink on this machine (temp dir)', () => {
  it('probe reads every link at once, any target bytes; apply converges', () => {
    const weird = `/tmp/it's "x"\nnew $(y) é`;
    const l1 = join(dir, 'l 1');
    const l2 = join(dir, 'l2');
    symlinkSync(weird, l1);
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'f'), '');
    const ps = [
      { path: l1, target: weird },
      { path: l2, target: 'rel/target' },
      { path: join(dir, 'd'), target: '/x', force: true },
      { path: join(dir, 'f'), target: '/x' },
    ];
    const facts = probeHere(symlinkType, ps);
    expect(facts.get('k0')).toEqual({ type: 'symbolic link', target: weird });
    expect(facts.get('k1')).toEqual({});
    expect(facts.get('k2')).toEqual({ type: 'directory' });
    expect(facts.get('k3')).toEqual({ type: 'regular empty file' });
    expectOk(decide(symlinkType, ps[0]!, facts.get('k0')));
    for (const n of [1, 2]) {
      const r = applySh(commandsOf(decide(symlinkType, ps[n]!, facts.get(`k${n}`))), dir);
      expect(r.stderr).toBe('');
    }
    expect(readlinkSync(l2)).toBe('rel/target');
    const again = probeHere(symlinkType, ps.slice(0, 3));
    for (const n of [0, 1, 2]) expectOk(decide(symlinkType, ps[n]!, again.get(`k${n}`)));
  });
  it('a missing parent directory fails naming it and the fix, not as a raw ln error', () => {
    const missing = join(dir, 'no-dir');
    const r = applySh(commandsOf(decide(symlinkType, { path: join(missing, 'l'), target: '/x' }, {})), dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`keel: ${missing} does not exist: add a directory resource for it before this symlink\n`);
  });
});
