import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileType } from '../../../src/resources/file.js';
import { join } from 'node:path';
import { directoryType } from '../../../src/resources/directory.js';
import { quote } from '../../../src/shell/quote.js';
import { ConfigError } from '../../../src/errors.js';
import { NASTY, applySh, commandsOf, decide, expectOk, expectShellSyntax, items, probeHere, tempDir } from './helpers.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const d = (extra: Record<string, string> = {}) => ({ type: 'directory', user: 'root', uid: '0', group: 'root', gid: '0', mode: '755', ...extra });

describe('directory decide', () => {
  it('converged -> ok, no commands', () => {
    expectOk(decide(directoryType, { path: '/srv/app/', owner: 'root', group: '0', mode: '0755' }, d()));
  });
  it('creates with owner and mode', () => {
    const c = commandsOf(decide(directoryType, { path: '/srv/app', owner: 'www-data', group: 'www-data', mode: '750' }, {}));
    expect(c).toEqual(['mkdir -p -- /srv/app', 'chown www-data:www-data -- /srv/app', 'chmod 00750 -- /srv/app']);
  });
  it('fixes attributes only', () => {
    const x = decide(directoryType, { path: '/srv/app', mode: '0755' }, d({ mode: '2755' }));
    expect(x.reason).toContain('mode 2755 -> 755');
    expect(commandsOf(x)).toEqual(['chmod 00755 -- /srv/app']);
    expect(commandsOf(decide(directoryType, { path: '/srv/app', group: 'adm' }, d()))).toEqual(['chown :adm -- /srv/app']);
  });
  it('absent', () => {
    expectOk(decide(directoryType, { path: '/srv/app', state: 'absent' }, {}));
    expect(commandsOf(decide(directoryType, { path: '/srv/app', state: 'absent' }, d()))).toEqual(['rm -rf -- /srv/app']);
    expect(() => decide(directoryType, { path: '/', state: 'absent' }, d())).toThrow(ConfigError);
  });
  it('something else in the way', () => {
    expect(() => decide(directoryType, { path: '/srv/app' }, d({ type: 'regular file' }))).toThrow(ConfigError);
    expect(() => decide(directoryType, { path: '/srv/app', state: 'absent' }, d({ type: 'symbolic link' }))).toThrow(ConfigError);
  });
  it('quotes nasty values', () => {
    for (const v of NASTY.filter((x) => !x.includes('\n'))) {
      const path = `/srv/${v}`;
      const c = commandsOf(decide(directoryType, { path, owner: v, group: v }, {})).join('\n');
      expect(c).toContain(quote(path));
      expect(c).toContain(quote(`${v}:${v}`));
      expectShellSyntax(c);
      expectShellSyntax(directoryType.probe(items(directoryType, [{ path }]), { wantDiff: false }));
    }
  });
});

describe('directory on this machine (temp dir)', () => {
  it('probe parses stat for several paths at once; apply converges, setgid cleared', () => {
    const a = join(dir, 'a b');
    const g = join(dir, 'sgid');
    mkdirSync(a);
    mkdirSync(g);
    chmodSync(g, 0o2755);
    writeFileSync(join(dir, 'f'), '');
    const ps = [{ path: a, mode: '0755' }, { path: g, mode: '0755' }, { path: join(dir, 'new/deep'), mode: '0700' }, { path: join(dir, 'f') }];
    const facts = probeHere(directoryType, ps);
    expect(facts.get('k0')).toMatchObject({ type: 'directory', user: 'root', uid: '0' });
    expect(facts.get('k1')?.mode).toBe('2755');
    expect(facts.get('k2')).toEqual({});
    expect(facts.get('k3')?.type).toBe('regular empty file');
    for (const [n, p] of ps.slice(0, 3).entries()) {
      const x = decide(directoryType, p, facts.get(`k${n}`));
      if (x.kind === 'change') expect(applySh(x.commands, dir).stderr).toBe('');
    }
    expect(statSync(g).mode & 0o7777).toBe(0o755);
    const again = probeHere(directoryType, ps.slice(0, 3));
    for (const [n, p] of ps.slice(0, 3).entries()) expectOk(decide(directoryType, p, again.get(`k${n}`)));
  });
});

describe('owners by name and by number (stat prints numbers; the names asked for are looked up once)', () => {
  it('a path owned by a wanted name is ok; another owner is changed, shown by name when it is one asked for', () => {
    const a = join(dir, 'owned');
    mkdirSync(a);
    chownSync(a, 1, 1); // daemon:daemon in Debian's base-passwd
    const ps = [
      { path: a, owner: 'daemon', group: 'daemon' },
      { path: a, owner: 1, group: '1' },
      { path: a, owner: 'root', group: 'root' },
      { path: a, owner: 'keel-no-such-user' },
    ];
    const facts = ps.map((p) => probeHere(directoryType, [p]).get('k0')!);
    expect(facts[0]).toMatchObject({ uid: '1', gid: '1', user: 'daemon', group: 'daemon' });
    expectOk(decide(directoryType, ps[0]!, facts[0]));
    expectOk(decide(directoryType, ps[1]!, facts[1]));
    expect(decide(directoryType, ps[2]!, facts[2]).reason).toBe(`${a}: owner uid 1 -> root, group gid 1 -> root`);
    expect(decide(directoryType, ps[3]!, facts[3]).reason).toBe(`${a}: owner uid 1 -> keel-no-such-user`);
    // Owned by root and wanted as root: nothing looked up, and root is named.
    chownSync(a, 0, 0);
    const root = probeHere(directoryType, [{ path: a, owner: 'root', group: 'root' }]).get('k0')!;
    expect(root).toMatchObject({ user: 'root', group: 'root' });
    expect(directoryType.probe(items(directoryType, [{ path: a, owner: 'root', group: 0 }]), { wantDiff: false }).toString()).not.toContain('getent');
    expect(decide(directoryType, { path: a, owner: 'daemon' }, probeHere(directoryType, [{ path: a, owner: 'daemon' }]).get('k0')).reason).toBe(
      `${a}: owner root -> daemon`,
    );
  });

  it('file: the same, next to its hashes and old contents (--diff)', () => {
    const f = join(dir, 'owned.txt');
    writeFileSync(f, 'x\n');
    chownSync(f, 1, 1);
    const its = items(fileType, [{ path: f, content: 'y\n', owner: 'daemon', group: 'root' }]);
    const out = spawnSync('sh', ['-c', `set +e\n${fileType.probe(its, { wantDiff: true })}`], { encoding: 'utf8' }).stdout;
    const facts = fileType.parse!(out, its).get('k0')!;
    expect(facts).toMatchObject({ user: 'daemon', uid: '1', group: '', gid: '1', old: Buffer.from('x\n').toString('base64') });
    expect(decide(fileType, its[0]!.params, facts).reason).toBe(`${f}: content, group gid 1 -> root`);
  });
});
