import { describe, expect, it } from 'vitest';
import { serviceType, type ServiceParams } from '../../../src/resources/service.js';
import { commandsOf, decide, expectOk, expectShellSyntax, items } from './helpers.js';

// Written by hand from systemctl(1) and a Debian 12 host (this machine runs no systemd):
// `systemctl show --property=Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload
//  -- nginx ssh php8.2-fpm` prints one block per argument, in order, blank-line separated;
// `ssh` is an alias resolved to its unit; a missing unit still gets a not-found block.
const SHOW = `Id=nginx.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
NeedDaemonReload=no

Id=ssh.service
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=disabled
NeedDaemonReload=yes

Id=php8.2-fpm.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
NeedDaemonReload=no
`;
const UNITS: ServiceParams[] = [{ name: 'nginx' }, { name: 'sshd' }, { name: 'php8.2-fpm' }];

function facts(name: string) {
  const its = items(serviceType, UNITS);
  const f = serviceType.parse!(SHOW, its);
  return f.get(`k${UNITS.findIndex((u) => u.name === name)}`)!;
}

describe('service', () => {
  it('parse: blocks in argument order', () => {
    expect(facts('nginx')).toMatchObject({ Id: 'nginx.service', ActiveState: 'active', UnitFileState: 'enabled' });
    expect(facts('sshd')).toMatchObject({ Id: 'ssh.service', NeedDaemonReload: 'yes' });
    expect(facts('php8.2-fpm')).toMatchObject({ LoadState: 'not-found', UnitFileState: '' });
  });
  it('parse: no systemd (no output) gives no facts rather than wrong ones', () => {
    expect(serviceType.parse!('', items(serviceType, UNITS)).get('k0')).toEqual({});
  });
  it('converged: started and enabled', () => {
    const d = decide(serviceType, { name: 'nginx', state: 'started', enabled: true, daemon_reload: true }, facts('nginx'));
    expectOk(d);
    expect(d.reason).toBe('nginx enabled, active (running)');
  });
  it('static units count as enabled', () => {
    expectOk(decide(serviceType, { name: 'x', enabled: true }, { LoadState: 'loaded', UnitFileState: 'static' }));
  });
  it('NeedDaemonReload triggers daemon-reload first', () => {
    const c = commandsOf(decide(serviceType, { name: 'sshd', state: 'started', enabled: true }, facts('sshd')));
    expect(c).toEqual(['systemctl daemon-reload', 'systemctl enable -- sshd', 'systemctl start -- sshd']);
  });
  it('a unit that is not installed yet: change, not a crash', () => {
    const d = decide(serviceType, { name: 'php8.2-fpm', state: 'started', enabled: true }, facts('php8.2-fpm'));
    expect(d.reason).toContain('unit not-found');
    expect(commandsOf(d)).toEqual(['systemctl daemon-reload', 'systemctl enable -- php8.2-fpm', 'systemctl start -- php8.2-fpm']);
    expectOk(decide(serviceType, { name: 'php8.2-fpm', state: 'stopped', enabled: false }, facts('php8.2-fpm')));
  });
  it('systemd unknown: plans the start', () => {
    expect(commandsOf(decide(serviceType, { name: 'nginx', state: 'started' }, {}))).toEqual(['systemctl start -- nginx']);
  });
  it('stop and disable', () => {
    expect(commandsOf(decide(serviceType, { name: 'nginx', state: 'stopped', enabled: false }, facts('nginx')))).toEqual([
      'systemctl disable -- nginx',
      'systemctl stop -- nginx',
    ]);
    expectOk(decide(serviceType, { name: 'sshd', state: 'stopped', enabled: false }, { ...facts('sshd'), NeedDaemonReload: 'no' }));
  });
  it('restarted and reloaded always change and are unverifiable', () => {
    for (const state of ['restarted', 'reloaded'] as const) {
      const d = decide(serviceType, { name: 'nginx', state }, facts('nginx'));
      expect(d.kind === 'change' && d.unverifiable).toBe(true);
      expectShellSyntax(commandsOf(d).join('\n'));
    }
  });
  it('probe: one systemctl show for all units', () => {
    const s = serviceType.probe(items(serviceType, [...UNITS, { name: 'nginx', state: 'restarted' }, { name: 'getty@tty1' }]), { wantDiff: false });
    expect(s.text).toBe(
      'systemctl show --property=Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload -- nginx sshd php8.2-fpm getty@tty1 2>/dev/null\n',
    );
    expectShellSyntax(s);
  });
});
