import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandType, type CommandParams } from '../../../src/resources/command.js';
import { quote } from '../../../src/shell/quote.js';
import { ConfigError } from '../../../src/errors.js';
import { NASTY, applySh, commandsOf, decide, expectOk, expectShellSyntax, items, probeHere, tempDir } from './helpers.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('command decide', () => {
  it('guards satisfied -> ok with the reason', () => {
    expect(decide(commandType, { run: 'x', creates: '/a' }, { creates: '1' })).toEqual({ kind: 'ok', reason: '/a exists' });
    expectOk(decide(commandType, { run: 'x', removes: '/a' }, { removes: '0' }));
    expectOk(decide(commandType, { run: 'x', unless: 'true' }, { unless: '0' }));
    expect(decide(commandType, { run: 'x', only_if: 'false' }, { only_if: '1' }).reason).toBe('only_if failed (exit 1): false');
  });
  it('no guard: change, unverifiable, says why', () => {
    const d = decide(commandType, { run: 'make install' }, {});
    expect(d).toMatchObject({ kind: 'change', unverifiable: true, reason: 'not idempotent: no creates/removes/unless/only_if guard' });
    expect(commandsOf(d)).toEqual([`(set +e; eval 'make install') </dev/null`]);
  });
  it('guarded run re-checks the guards at apply time', () => {
    const d = decide(
      commandType,
      { run: 'make', creates: '/opt/x', unless: 'test -f /y', cwd: '/src', env: { A: `it's`, B: '$(x)' } },
      { creates: '0', unless: '1' },
    );
    expect(d.kind === 'change' && d.unverifiable).toBeFalsy();
    const c = commandsOf(d);
    expect(c).toEqual([
      `export A='it'\\''s'`,
      `export B='$(x)'`,
      'cd -- /src',
      "if [ ! -e /opt/x ] && ! (set +e; eval 'test -f /y') </dev/null >/dev/null; then (set +e; eval make) </dev/null; " +
        "else echo 'skipped: a guard changed since the probe' >&2; fi",
    ]);
    expectShellSyntax(c.join('\n'));
  });
  it('only_if alone is unverifiable', () => {
    const d = decide(commandType, { run: 'x', only_if: 'true' }, { only_if: '0' });
    expect(d.kind === 'change' && d.unverifiable).toBe(true);
  });
  it('cwd missing at probe time -> run', () => {
    expect(decide(commandType, { run: 'x', creates: 'out', cwd: '/new' }, { cwd: 'missing' }).reason).toContain('cwd /new does not exist yet');
  });
  it('as another user', () => {
    const c = commandsOf(decide(commandType, { run: 'whoami', user: 'deploy' }, {}));
    expect(c).toEqual([`printf '%s\\n' whoami | runuser -u deploy -- sh -c 'eval "$(cat)"'`]);
  });
  it('rejects bad env names', () => {
    expect(() => decide(commandType, { run: 'x', env: { 'A-B': '1' } }, {})).toThrow(ConfigError);
  });
  it('quotes nasty values; the run text reaches eval intact, never as a process argument', () => {
    for (const v of NASTY) {
      const p: CommandParams = { run: `echo ${v}`, creates: `/tmp/${v}`, cwd: `/tmp/${v}`, env: { V: v }, unless: v, only_if: v };
      const c = commandsOf(decide(commandType, p, {})).join('\n');
      expect(c).toContain(quote(`/tmp/${v}`));
      expect(c).toContain(`export V=${quote(v)}`);
      expect(c).toContain(`eval ${quote(`echo ${v}`)}`);
      expect(c).not.toContain('sh -c ' + quote(`echo ${v}`));
      expectShellSyntax(c);
      expectShellSyntax(
        `${commandType.probeStart!(items(commandType, [p]), { wantDiff: false })}\n${commandType.probe(items(commandType, [p]), { wantDiff: false })}`,
      );
    }
  });
});

describe('command on this machine (temp dir)', () => {
  it('probe evaluates guards with cwd and env; a syntax error in a guard does not break the script', () => {
    writeFileSync(join(dir, 'made'), '');
    const ps: CommandParams[] = [
      { run: 'x', creates: 'made', cwd: dir },
      { run: 'x', removes: join(dir, 'nope') },
      { run: 'x', unless: '[ "$K" = "v w" ]', env: { K: 'v w' } },
      { run: 'x', only_if: 'exit 3' },
      { run: 'x', unless: 'if then fi (' },
      { run: 'x', creates: 'a', cwd: join(dir, 'missing') },
      { run: 'x' }, // no guard: nothing probed
      { run: 'x', unless: 'cat' }, // must not eat the script from stdin
    ];
    const f = probeHere(commandType, ps);
    expect(f.get('k0')).toEqual({ creates: '1' });
    expect(f.get('k1')).toEqual({ removes: '0' });
    expect(f.get('k2')).toEqual({ unless: '0' });
    expect(f.get('k3')).toEqual({ only_if: '3' });
    expect(f.get('k4')?.unless).toBe('2');
    expect(f.get('k5')).toEqual({ cwd: 'missing' });
    expect(f.get('k6')).toEqual({});
    expect(f.get('k7')).toEqual({ unless: '0' });
  });
  // Each guard marks that it started, then waits (up to 5 s) until `n` guards have started:
  // only guards that run at the same time can all see `n` marks.
  const meeting = (at: string, i: number, n: number) =>
    `touch ${quote(join(at, String(i)))}; k=0; while [ "$(ls ${quote(at)} | wc -l)" -lt ${n} ]; do k=$((k+1)); [ $k -gt 50 ] && exit 1; sleep 0.1; done`;
  it('unless and only_if guards run at the same time, each status on its own resource, paths and cwd as before', () => {
    const at = join(dir, 'meet3');
    mkdirSync(at);
    writeFileSync(join(dir, 'made3'), '');
    const ps: CommandParams[] = [
      { run: 'x', unless: meeting(at, 0, 3), creates: 'made3', cwd: dir },
      { run: 'x', only_if: `${meeting(at, 1, 3)} && exit 7`, env: { K: 'v' } },
      { run: 'x', unless: 'exit 5', cwd: join(dir, 'missing') },
      { run: 'x', unless: `${meeting(at, 2, 3)} && [ "$(pwd)" = ${quote(dir)} ]`, cwd: dir },
    ];
    const f = probeHere(commandType, ps);
    expect(f.get('k0')).toEqual({ creates: '1', unless: '0' });
    expect(f.get('k1')).toEqual({ only_if: '7' });
    expect(f.get('k2')).toEqual({ cwd: 'missing' });
    expect(f.get('k3')).toEqual({ unless: '0' });
  });
  it('at most four guards run at once: the fifth starts when one is done', () => {
    // Each guard counts the guards running (its mark is there while it runs) until it sees
    // five, or for 1 s. Four at once is the most any sees; five at once would let all succeed.
    const running = join(dir, 'running');
    const seen = join(dir, 'seen');
    mkdirSync(running);
    const guard = (i: number) => {
      const mine = quote(join(running, String(i)));
      return (
        `touch ${mine}; k=0; while :; do n=$(ls ${quote(running)} | wc -l); echo $n >> ${quote(seen)}; ` +
        `[ $n -ge 5 ] && { rm ${mine}; exit 0; }; k=$((k+1)); [ $k -gt 10 ] && { rm ${mine}; exit 1; }; sleep 0.1; done`
      );
    };
    const ps: CommandParams[] = [0, 1, 2, 3, 4].map((i) => ({ run: 'x', unless: guard(i) }));
    // One whose cwd is missing starts no job.
    ps.push({ run: 'x', unless: guard(9), cwd: join(dir, 'gone') });
    const f = probeHere(commandType, ps);
    expect([0, 1, 2, 3, 4].map((i) => f.get(`k${i}`)?.unless)).toEqual(['1', '1', '1', '1', '1']);
    expect(f.get('k5')).toEqual({ cwd: 'missing' });
    expect(Math.max(...readFileSync(seen, 'utf8').trim().split('\n').map(Number))).toBe(4);
  });
  it('apply runs once, then the creates guard makes it converge', () => {
    const out = join(dir, 'out');
    const p: CommandParams = { run: 'echo "$MSG" >> out', creates: 'out', cwd: dir, env: { MSG: `it's $(x)` } };
    const d = decide(commandType, p, probeHere(commandType, [p]).get('k0'));
    expect(applySh(commandsOf(d), dir).status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(`it's $(x)\n`);
    expectOk(decide(commandType, p, probeHere(commandType, [p]).get('k0')));
    // Stale plan: the guard is re-checked at apply, nothing runs twice.
    expect(applySh(commandsOf(d), dir).stderr).toContain('skipped');
    expect(readFileSync(out, 'utf8')).toBe(`it's $(x)\n`);
    expect(existsSync(out)).toBe(true);
  });

  // A service that takes a while to start (supervisor's STARTING): the check right after the
  // start must wait for it, not race it. The "service" here becomes ready 1.5 s after the run.
  it('settle: the guard is re-checked until it holds, so a slow start passes', () => {
    const ready = join(dir, 'ready-slow');
    const p: CommandParams = { run: `(sleep 1.5; touch ${quote(ready)}) >/dev/null 2>&1 &`, unless: `test -e ${quote(ready)}`, settle: 10 };
    const r = applySh(commandsOf(decide(commandType, p, { unless: '1' })), dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(existsSync(ready)).toBe(true);
  });
  it('without settle the same slow start is seen unconverged right after the run (the race settle fixes)', () => {
    const ready = join(dir, 'ready-race');
    const p: CommandParams = { run: `(sleep 1.5; touch ${quote(ready)}) >/dev/null 2>&1 &`, unless: `test -e ${quote(ready)}` };
    expect(applySh(commandsOf(decide(commandType, p, { unless: '1' })), dir).status).toBe(0);
    expect(decide(commandType, p, probeHere(commandType, [p]).get('k0')).kind).toBe('change');
  });
  it('settle: gives up after its bound, naming what it waited for and what the guard said', () => {
    const p: CommandParams = { run: 'true', unless: 'echo "aq-rq-default-1: STARTING" >&2; exit 1', creates: join(dir, 'never'), settle: 1 };
    const r = applySh(commandsOf(decide(commandType, p, { unless: '1', creates: '0' })), dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`ran, then waited 1 s for ${join(dir, 'never')} to exist and \`unless\` to succeed`);
    expect(r.stderr).toContain('aq-rq-default-1: STARTING');
  });
  it('settle needs a guard to wait for', () => {
    expect(() => decide(commandType, { run: 'x', only_if: 'true', settle: 5 }, {})).toThrow(/settle waits for a guard/);
  });
});
