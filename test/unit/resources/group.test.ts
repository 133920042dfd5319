import { describe, expect, it } from 'vitest';
import { groupType } from '../../../src/resources/group.js';
import { commandsOf, decide, expectOk, expectShellSyntax, items, probeHere } from './helpers.js';

describe('group', () => {
  it('parse: real getent group on this machine (read-only)', () => {
    const f = probeHere(groupType, [{ name: 'root' }, { name: 'keel-no-such-group' }]);
    expect(f.get('k0')).toEqual({ gid: '0', members: '' });
    expect(f.get('k1')).toEqual({});
    const its = items(groupType, [{ name: 'sudo' }]);
    expect(groupType.parse!('sudo:x:27:alice,bob\n', its).get('k0')).toEqual({ gid: '27', members: 'alice,bob' });
  });
  it('converged', () => {
    expectOk(decide(groupType, { name: 'app', gid: 1500 }, { gid: '1500', members: '' }));
    expectOk(decide(groupType, { name: 'app' }, { gid: '1500', members: '' }));
  });
  it('creates, converging in shell', () => {
    const c = commandsOf(decide(groupType, { name: 'app', gid: 1500, system: true }, {}));
    expect(c).toEqual(['if getent group app >/dev/null; then groupmod -g 1500 -- app; else groupadd -g 1500 -r -- app; fi']);
    expectShellSyntax(c.join('\n'));
    expect(commandsOf(decide(groupType, { name: 'app' }, {}))[0]).toContain('then :; else groupadd   -- app;');
  });
  it('changes gid', () => {
    expect(commandsOf(decide(groupType, { name: 'app', gid: 1501 }, { gid: '1500' }))).toEqual(['groupmod -g 1501 -- app']);
  });
  it('absent', () => {
    expectOk(decide(groupType, { name: 'app', state: 'absent' }, {}));
    expect(commandsOf(decide(groupType, { name: 'app', state: 'absent' }, { gid: '1' }))[0]).toContain('groupdel -- app');
  });
  it('probe is one getent for all', () => {
    const s = groupType.probe(items(groupType, [{ name: 'a' }, { name: 'b' }, { name: 'a' }]), { wantDiff: false });
    expect(s.text).toBe('getent group a b 2>/dev/null\n');
  });
});
