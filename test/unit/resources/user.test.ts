import { describe, expect, it } from 'vitest';
import { userType, type UserParams } from '../../../src/resources/user.js';
import { quote } from '../../../src/shell/quote.js';
import { ConfigError } from '../../../src/errors.js';
import { commandsOf, decide, expectOk, expectShellSyntax, items, probeHere } from './helpers.js';

// getent output as on Debian 12.
const OUT = `deploy:x:1001:1001:Deploy,,,:/home/deploy:/bin/bash
root:x:0:0:root:/root:/bin/bash
--group
deploy:x:1001:
docker:x:998:deploy,alice
sudo:x:27:
www-data:x:33:
`;

function factsFor(p: UserParams) {
  const its = items(userType, [p]);
  return userType.parse!(OUT, its).get('k0')!;
}

describe('user', () => {
  it('parse: passwd fields and membership from one getent group', () => {
    expect(factsFor({ name: 'deploy', group: 'deploy', groups: ['docker', 'sudo', 'missing'] })).toEqual({
      uid: '1001',
      gid: '1001',
      home: '/home/deploy',
      shell: '/bin/bash',
      'g:deploy': '1001',
      'm:deploy': '1',
      'g:docker': '998',
      'm:docker': '1',
      'g:sudo': '27',
    });
    expect(factsFor({ name: 'ghost' })).toEqual({});
  });
  it('parse: real getent on this machine (read-only)', () => {
    const f = probeHere(userType, [{ name: 'root', groups: ['root'] }, { name: 'keel-no-such-user' }]);
    expect(f.get('k0')).toMatchObject({ uid: '0', gid: '0', 'm:root': '1' });
    expect(f.get('k1')).toEqual({});
  });
  it('converged', () => {
    const p: UserParams = { name: 'deploy', uid: 1001, group: 'deploy', groups: ['docker'], home: '/home/deploy/', shell: '/bin/bash' };
    expectOk(decide(userType, p, factsFor(p)));
    expectOk(decide(userType, { name: 'deploy', group: 1001 }, factsFor({ name: 'deploy' })));
  });
  it('creates: useradd or usermod, chosen in shell', () => {
    const c = commandsOf(decide(userType, { name: 'app', system: true, groups: ['a', 'b'], shell: '/usr/sbin/nologin' }, {}));
    expect(c[0]).toBe(
      'if id -u -- app >/dev/null 2>&1; then usermod -a -G a,b -s /usr/sbin/nologin -- app; else useradd -G a,b -s /usr/sbin/nologin -r -M -- app; fi',
    );
    expect(commandsOf(decide(userType, { name: 'app' }, {}))[0]).toContain('then :; else useradd -m -- app');
    expectShellSyntax(c.join('\n'));
  });
  it('modifies only what differs, appending groups', () => {
    const p: UserParams = { name: 'deploy', groups: ['docker', 'sudo'], shell: '/bin/sh', uid: 1001 };
    const d = decide(userType, p, factsFor(p));
    expect(d.reason).toBe('user deploy: add to sudo, shell /bin/bash -> /bin/sh');
    expect(commandsOf(d)[0]).toContain('then usermod -a -G sudo -s /bin/sh -- deploy;');
  });
  it('primary group by name', () => {
    const p: UserParams = { name: 'deploy', group: 'www-data' };
    expect(commandsOf(decide(userType, p, factsFor(p)))[0]).toContain('usermod -g www-data -- deploy');
  });
  it('absent', () => {
    expectOk(decide(userType, { name: 'x', state: 'absent' }, {}));
    expect(commandsOf(decide(userType, { name: 'deploy', state: 'absent' }, factsFor({ name: 'deploy' })))[0]).toContain('userdel -- deploy');
  });
  it('quotes home and shell; rejects bad ones', () => {
    const home = `/home/it's $(x) "q"`;
    const c = commandsOf(decide(userType, { name: 'app', home, shell: '/bin/my shell' }, {}))[0]!;
    expect(c).toContain(quote(home));
    expect(c).toContain(quote('/bin/my shell'));
    expectShellSyntax(c);
    expect(() => decide(userType, { name: 'app', shell: 'bash' }, {})).toThrow(ConfigError);
    expect(() => decide(userType, { name: 'app', home: '/a:b' }, {})).toThrow(ConfigError);
  });
  it('probe: one getent passwd, one getent group', () => {
    const s = userType.probe(
      items(userType, [
        { name: 'a', groups: ['x'] },
        { name: 'b', group: 'y' },
      ]),
      { wantDiff: false },
    );
    expect(s.text).toBe('getent passwd a b 2>/dev/null\necho --group; getent group x y 2>/dev/null\n');
  });
});
