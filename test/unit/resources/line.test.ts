import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lineType, type LineParams } from '../../../src/resources/line.js';
import { quote } from '../../../src/shell/quote.js';
import { ConfigError } from '../../../src/errors.js';
import { NASTY, applySh, commandsOf, decide, expectOk, expectShellSyntax, items, probeHere, tempDir } from './helpers.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const facts = (exact: number, matches = 0, last = 0) => ({ exists: '1', exact: String(exact), matches: String(matches), last: String(last) });

describe('line decide', () => {
  it('converged: the line is there', () => {
    expectOk(decide(lineType, { path: '/etc/x', line: 'a=1' }, facts(1)));
  });
  it('converged: regexp, last match is the line', () => {
    expectOk(decide(lineType, { path: '/etc/x', line: 'a=1', regexp: '^a=' }, facts(1, 2, 1)));
  });
  it('converged: regexp matches nothing but the exact line exists', () => {
    expectOk(decide(lineType, { path: '/etc/x', line: '#a=1', regexp: '^a=' }, facts(1, 0, 0)));
  });
  it('appends / replaces', () => {
    expect(decide(lineType, { path: '/etc/x', line: 'a=1' }, facts(0)).reason).toContain('append');
    expect(decide(lineType, { path: '/etc/x', line: 'a=1', regexp: '^a=' }, facts(0, 1, 0)).reason).toContain('replace');
  });
  it('absent', () => {
    expectOk(decide(lineType, { path: '/etc/x', line: 'a=1', state: 'absent' }, facts(0)));
    expectOk(decide(lineType, { path: '/etc/x', regexp: '^a=', state: 'absent' }, {}));
    expect(decide(lineType, { path: '/etc/x', regexp: '^a=', state: 'absent' }, facts(0, 3)).reason).toContain('remove 3');
  });
  it('missing file: create, or a change that fails with a clear message', () => {
    const c = commandsOf(decide(lineType, { path: '/etc/x', line: 'a', create: true }, {})).join('\n');
    expect(c).toContain('keel_src=/dev/null');
    const n = commandsOf(decide(lineType, { path: '/etc/x', line: 'a' }, {})).join('\n');
    expect(n).toContain('set create: true');
  });
  it('rejects newlines and missing line', () => {
    expect(() => decide(lineType, { path: '/etc/x', line: 'a\nb' }, {})).toThrow(ConfigError);
    expect(() => decide(lineType, { path: '/etc/x' }, {})).toThrow(ConfigError);
  });
  it('quotes nasty values', () => {
    for (const v of NASTY.filter((x) => !x.includes('\n'))) {
      const p = { path: `/etc/${v}`, line: v, regexp: v };
      const c = commandsOf(decide(lineType, p, facts(0))).join('\n');
      expect(c).toContain(quote(p.path));
      expect(c).toContain(`KEEL_LINE=${quote(v)}`);
      expectShellSyntax(c);
      expectShellSyntax(lineType.probe(items(lineType, [p, { path: p.path, line: 'x' }]), { wantDiff: false }));
    }
  });
});

/** The probe's facts, and how many awk processes it ran (a shim on PATH counts them). */
function probeCounting(ps: LineParams[]): { facts: Map<string, unknown>; calls: number } {
  const bin = join(dir, 'bin');
  const log = join(dir, 'awk-calls');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'awk'), `#!/bin/sh\necho awk >> ${quote(log)}\nexec /usr/bin/awk "$@"\n`, { mode: 0o755 });
  rmSync(log, { force: true });
  const its = items(lineType, ps);
  const script = `set +e\nPATH=${quote(bin)}:$PATH\n${lineType.probe(its, { wantDiff: false })}`;
  const facts = lineType.parse!(spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout, its);
  const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').length : 0;
  return { facts, calls };
}

function converge(ps: LineParams[]): void {
  const f = probeHere(lineType, ps);
  ps.forEach((p, n) => {
    const d = decide(lineType, p, f.get(`k${n}`));
    if (d.kind === 'change') {
      const r = applySh(d.commands, dir);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
  });
  const again = probeHere(lineType, ps);
  ps.forEach((p, n) => expectOk(decide(lineType, p, again.get(`k${n}`))));
}

describe('line on this machine (temp files, the host awk)', () => {
  it('one awk per file answers every item of that file', () => {
    const path = join(dir, 'conf');
    writeFileSync(path, 'a=1\nb=2\n# c=3\n1.0\nb=22');
    const ps: LineParams[] = [
      { path, line: 'a=1' },
      { path, line: 'b=9', regexp: '^b=' },
      { path, line: 'c=3', regexp: '^#? ?c=' },
      { path, line: '1' }, // awk must compare strings, not numbers: "1.0" is not "1"
      { path: join(dir, 'nope'), line: 'x' },
    ];
    const f = probeHere(lineType, ps);
    expect(f.get('k0')).toEqual(facts(1));
    expect(f.get('k1')).toEqual(facts(0, 2, 0));
    expect(f.get('k2')).toEqual(facts(0, 1, 0));
    expect(f.get('k3')).toEqual(facts(0));
    expect(f.get('k4')).toEqual({});
  });
  it('several files: one awk reads them all, with the same facts as one awk per file', () => {
    const a = join(dir, 'a.conf');
    const b = join(dir, 'b.conf');
    writeFileSync(a, 'a=1\nb=2\n# c=3\n1.0\nb=22');
    writeFileSync(b, 'x\nport=1\nport=2\n');
    mkdirSync(join(dir, 'a-dir'));
    const ps: LineParams[] = [
      { path: a, line: 'a=1' },
      { path: b, line: 'port=2', regexp: '^port=' },
      { path: a, line: 'b=9', regexp: '^b=' },
      { path: join(dir, 'nope'), line: 'x' },
      { path: a, line: '1' },
      { path: b, line: 'x' },
      { path: join(dir, 'a-dir'), line: 'x' }, // not a regular file: no facts, as with [ -f ]
    ];
    const want = [facts(1), facts(1, 2, 1), facts(0, 2, 0), {}, facts(0), facts(1), {}];
    const { facts: merged, calls } = probeCounting(ps);
    ps.forEach((_, n) => expect(merged.get(`k${n}`), `k${n}`).toEqual(want[n]));
    expect(calls).toBe(1);
    // One file per probe: the per-file awk, which the merged one must agree with.
    ps.forEach((p, n) => expect(probeCounting([p]).facts.get('k0'), `k${n} alone`).toEqual(want[n]));
  });
  it('several files, a regexp this awk cannot compile: each file gets its own awk, the others keep their facts', () => {
    const a = join(dir, 'a.conf');
    const b = join(dir, 'b.conf');
    writeFileSync(a, 'a=1\n');
    writeFileSync(b, 'b=1\n');
    const ps: LineParams[] = [
      { path: a, line: 'a=1' },
      { path: b, line: 'b=2', regexp: '^b=(' },
    ];
    const { facts: f, calls } = probeCounting(ps);
    expect(f.get('k0')).toEqual(facts(1));
    expect(f.get('k1')).toEqual({});
    expect(calls).toBe(3);
  });
  it('replaces the last match, appends, removes; keeps mode; converges', () => {
    const path = join(dir, `it's $(x).conf`);
    writeFileSync(path, 'port=1\nport=2\nkeep\nno newline at end');
    chmodSync(path, 0o640);
    converge([
      { path, line: 'port=80', regexp: '^port=' },
      { path, line: `new "line" with $HOME and \\1` },
      { path, line: 'keep', state: 'absent' },
    ]);
    expect(readFileSync(path, 'utf8')).toBe(`port=1\nport=80\nno newline at end\nnew "line" with $HOME and \\1\n`);
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });
  it('regexp with backslashes reaches awk unchanged (ENVIRON, not -v)', () => {
    const path = join(dir, 'dots');
    writeFileSync(path, 'axb\n');
    converge([{ path, line: 'a.b', regexp: '^a\\.b$' }]);
    expect(readFileSync(path, 'utf8')).toBe('axb\na.b\n');
  });
  it('creates the file when asked; edits through a symlink', () => {
    const path = join(dir, 'created');
    converge([{ path, line: 'x', create: true }]);
    expect(readFileSync(path, 'utf8')).toBe('x\n');
    expect(statSync(path).mode & 0o777).toBe(0o644);
    const real = join(dir, 'real');
    writeFileSync(real, 'a\n');
    symlinkSync(real, join(dir, 'link'));
    converge([{ path: join(dir, 'link'), line: 'b' }]);
    expect(readFileSync(real, 'utf8')).toBe('a\nb\n');
  });
  it('without create, a missing file fails at apply', () => {
    const d = decide(lineType, { path: join(dir, 'absent'), line: 'x' }, {});
    const r = applySh(commandsOf(d), dir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('does not exist');
  });
  it('create: true in a missing directory fails naming it and the fix; absent there is fine', () => {
    const missing = join(dir, 'no-dir');
    const r = applySh(commandsOf(decide(lineType, { path: join(missing, 'x'), line: 'x', create: true }, {})), dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`keel: ${missing} does not exist: add a directory resource for it before this file\n`);
    // The probe saw the file, then it went away with its directory: nothing left to remove.
    const gone = applySh(commandsOf(decide(lineType, { path: join(missing, 'x'), line: 'x', state: 'absent' }, facts(1))), dir);
    expect(gone.stderr).toBe('');
    expect(gone.status).toBe(0);
  });
});

describe('line regexps run in mawk (POSIX ERE)', () => {
  it('translates \\s \\d \\w outside bracket expressions, keeps other escapes', async () => {
    const { toPosixEre } = await import('../../../src/resources/line.js');
    expect(toPosixEre('^\\s*#?\\s*server_tokens ')).toBe('^[[:space:]]*#?[[:space:]]*server_tokens ');
    expect(toPosixEre('port\\s+\\d+')).toBe('port[[:space:]]+[0-9]+');
    expect(toPosixEre('a\\.b[\\s]')).toBe('a\\.b[\\s]');
    expect(toPosixEre('[]\\s]x\\w')).toBe('[]\\s]x[[:alnum:]_]');
  });
});
