import { describe, expect, it } from 'vitest';
import { aptRefreshCommand, APT_STALE_COMMAND, packageType } from '../../../src/resources/package.js';
import { commandsOf, decide, expectOk, expectShellSyntax, items, applySh, tempDir } from './helpers.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// `dpkg-query -W -f '${Package}:${Architecture}\t${db:Status-Abbrev}\t${Version}\n'` on Debian 12.
const DPKG = [
  'nginx:amd64\tii \t1.22.1-9+deb12u1',
  'curl:amd64\thi \t7.88.1-10+deb12u8', // held: still installed
  'vim:amd64\trc \t2:9.0.1378-2', // removed, config files left
  'libc6:amd64\tii \t2.36-9+deb12u10',
  'libc6:i386\tii \t2.36-9+deb12u10',
  'zlib1g:amd64\tiU \t1:1.2.13.dfsg-1', // unpacked, not configured
].join('\n');
const POLICY = `--candidates
nginx:
  Installed: 1.22.1-9+deb12u1
  Candidate: 1.22.1-9+deb12u2
  Version table:
     1.22.1-9+deb12u2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
 *** 1.22.1-9+deb12u1 100
        100 /var/lib/dpkg/status
`;

function parse(names: string[], state?: 'latest') {
  const its = items(packageType, [{ name: names, state }]);
  return packageType.parse!(`${DPKG}\n${state ? POLICY : ''}`, its).get('k0')!;
}

describe('package', () => {
  it('parse: installed, held, arch-qualified; removed and half-installed are not installed', () => {
    const f = parse(['nginx', 'curl', 'vim', 'libc6:i386', 'zlib1g']);
    expect(f).toEqual({ 'v:nginx': '1.22.1-9+deb12u1', 'v:curl': '7.88.1-10+deb12u8', 'v:libc6:i386': '2.36-9+deb12u10' });
  });
  it('converged: installed (held too) -> ok with versions', () => {
    const d = decide(packageType, { name: ['nginx', 'curl'] }, parse(['nginx', 'curl']));
    expectOk(d);
    expect(d.reason).toContain('nginx 1.22.1-9+deb12u1');
  });
  it('installs what is missing, refreshing the lists first', () => {
    const c = commandsOf(decide(packageType, { name: ['nginx', 'vim'] }, parse(['nginx', 'vim'])));
    expect(c[0]).toContain('apt-get update');
    expect(c[1]).toMatch(/apt-get install .* -- vim$/);
    expectShellSyntax(c.join('\n'));
  });
  it('latest: upgrades when the candidate differs', () => {
    const c = commandsOf(decide(packageType, { name: 'nginx', state: 'latest' }, parse(['nginx'], 'latest')));
    expect(c[1]).toContain('-- nginx');
    expectOk(decide(packageType, { name: 'nginx', state: 'latest' }, { 'v:nginx': '1', 'c:nginx': '1' }));
  });
  it('pinned versions', () => {
    expectOk(decide(packageType, { name: 'nginx=1.22.1-9+deb12u1' }, parse(['nginx'])));
    expect(commandsOf(decide(packageType, { name: 'nginx=1.22.1-9+deb12u2' }, parse(['nginx'])))[1]).toContain('nginx=1.22.1-9+deb12u2');
  });
  it('absent', () => {
    expectOk(decide(packageType, { name: 'vim', state: 'absent' }, parse(['vim'])));
    expect(commandsOf(decide(packageType, { name: ['nginx', 'vim'], state: 'absent' }, parse(['nginx', 'vim'])))[0]).toMatch(/apt-get remove .* -- nginx$/);
  });
  it('probe parses as sh', () => {
    expectShellSyntax(packageType.probe(items(packageType, [{ name: ['nginx', 'curl'], state: 'latest' }]), { wantDiff: false }));
  });
  it('refresh: once per run, and forced by the apt-stale marker of apt_repository', () => {
    const run = tempDir();
    try {
      // Replace apt-get with a stub on PATH: nothing touches this machine's apt.
      writeFileSync(join(run, 'apt-get'), '#!/bin/sh\necho updated\n', { mode: 0o755 });
      const stub = `PATH=${run}:$PATH\n`;
      const refresh = aptRefreshCommand(3600);
      expectShellSyntax(refresh);
      applySh([APT_STALE_COMMAND], run);
      const r1 = applySh([stub + refresh], run);
      expect(r1.stderr).toContain('updated');
      const r2 = applySh([stub + refresh], run);
      expect(r2.stderr).toBe('');
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });
});
