// Facts read by the probe, and plans whose values depend on them (engine/facts.ts,
// engine/variants.ts), on this machine's real /bin/sh. The distribution is made up: the scripts'
// /etc/os-release is pointed at a file of the test's, so one machine plays Debian 12, 13 and 14.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RoleLibrary } from '../../src/engine/roles.js';
import { compileForAnyPlatform } from '../../src/engine/variants.js';
import { runHost } from '../../src/engine/host-run.js';
import { packageType } from '../../src/resources/package.js';
import type { Host } from '../../src/inventory/types.js';
import type { ExecResult, RunScriptOptions } from '../../src/ssh/types.js';
import { LocalSession, localConnection } from '../helpers/local-session.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-facts-'));
  mkdirSync(join(dir, 'roles', 'db'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const RELEASES = {
  bookworm: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
  trixie: 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n',
  forky: "PRETTY_NAME='Debian GNU/Linux 14 (forky)'\nID=debian\nVERSION_ID='14'\nVERSION_CODENAME=forky\n",
};

/** This machine's shell, with /etc/os-release read from the test's file for `release`. */
class OsSession extends LocalSession {
  constructor(
    private readonly osRelease: string,
    env: Record<string, string>,
  ) {
    super('local', env);
  }
  override runScript(script: string, options?: RunScriptOptions): Promise<ExecResult> {
    return super.runScript(script.replaceAll('/etc/os-release', this.osRelease), options);
  }
}

function session(release: keyof typeof RELEASES): OsSession {
  const file = join(dir, `os-release-${release}`);
  writeFileSync(file, RELEASES[release]);
  return new OsSession(file, { KEEL_STATE_DIR: join(dir, 'state') });
}

const ROLE = `
variables:
  db_version: {type: integer, default_by_codename: {bookworm: 15, trixie: 17}}
resources:
  - file: {path: "{{base}}/version", content: "server {{db_version}}\\n"}
`;

function host(vars: Record<string, unknown> = {}): Host {
  return {
    name: 'db1',
    groups: ['all'],
    roles: ['db'],
    vars: { base: dir, ...vars },
    varLocations: Object.fromEntries(Object.keys(vars).map((k) => [k, { file: 'inventories/test.yaml', line: 7 }])),
    location: { file: 'inventories/test.yaml', line: 3 },
    connection: localConnection(),
  };
}

function compile(roleYaml: string, vars: Record<string, unknown> = {}) {
  writeFileSync(join(dir, 'roles', 'db', 'role.yaml'), roleYaml);
  return compileForAnyPlatform(host(vars), new RoleLibrary([join(dir, 'roles')]), { env: 'test', root: dir });
}

const version = () => readFileSync(join(dir, 'version'), 'utf8');

describe('a default by release (default_by_codename)', () => {
  it('gives each release its value, chosen by the probe in its one round trip; a second run changes nothing', async () => {
    const plan = compile(ROLE);
    // Two platforms have a default (bookworm, trixie); Ubuntu's do not compile, and are left
    // to the probe of such a host.
    expect(plan.byFacts?.variants.map((v) => v.patterns)).toEqual([['debian/12/bookworm/*/*'], ['debian/13/trixie/*/*']]);

    const s = session('trixie');
    const first = await runHost(plan, s, { check: false, diff: false });
    expect(first.changed).toBe(1);
    expect(version()).toBe('server 17\n');
    expect(s.roundTrips).toBe(2); // probe, apply: the facts cost no round trip of their own

    const again = session('trixie');
    const second = await runHost(plan, again, { check: false, diff: false });
    expect(second.changed).toBe(0);
    expect(again.roundTrips).toBe(1);

    const old = session('bookworm');
    await runHost(plan, old, { check: false, diff: false });
    expect(version()).toBe('server 15\n');
  });

  it('an explicit value wins, and the plan then depends on no fact', async () => {
    const plan = compile(ROLE, { db_version: 16 });
    expect(plan.byFacts).toBeUndefined();
    await runHost(plan, session('trixie'), { check: false, diff: false });
    expect(version()).toBe('server 16\n');
  });

  it('a release the role has no default for fails on that host, naming the variable, the release and the fix', async () => {
    const plan = compile(ROLE);
    const s = session('forky');
    const r = await runHost(plan, s, { check: false, diff: false });
    expect(r.error).toContain('no plan for Debian 14 (forky), amd64');
    expect(r.error).toMatch(
      /roles\/db\/role\.yaml:3:\d+: variable "db_version" has no default for Debian 14 \(forky\), amd64: the role gives one for bookworm, trixie/,
    );
    expect(r.error).toContain('hint: set db_version for this host in the inventory');
    expect(s.roundTrips).toBe(1);
  });

  it('a release no variant covers gets its plan once its facts are read: one more round trip', async () => {
    const plan = compile(ROLE.replace('{bookworm: 15, trixie: 17}', '{bookworm: 15, trixie: 17}, default: 18'));
    const s = session('forky');
    const r = await runHost(plan, s, { check: false, diff: false });
    expect(r.failed).toBe(0);
    expect(version()).toBe('server 18\n');
    expect(s.roundTrips).toBe(3); // probe (facts only), probe with forky's plan, apply
  });

  it('a template that reads facts.architecture gets a plan per architecture', async () => {
    const plan = compile(`
resources:
  - file: {path: "{{base}}/arch", content: "{{facts.architecture}} {{facts.distribution}}\\n"}
`);
    expect(plan.byFacts?.variants.flatMap((v) => v.patterns)).toContain('debian/13/trixie/x86_64/*');
    await runHost(plan, session('trixie'), { check: false, diff: false });
    const machine = readFileSync('/proc/sys/kernel/arch', 'utf8').trim();
    expect(readFileSync(join(dir, 'arch'), 'utf8')).toBe(`${machine === 'x86_64' ? 'amd64' : machine === 'aarch64' ? 'arm64' : machine} debian\n`);
  });

  it('a plan that reads no fact is compiled once (no variants)', () => {
    const plan = compile(`
resources:
  - file: {path: "{{base}}/plain", content: "x"}
`);
    expect(plan.byFacts).toBeUndefined();
  });
});

describe('a package the release does not have', () => {
  it("apt's message becomes the package, the release and the variable its name came from", async () => {
    const out = 'Reading package lists...\nE: Unable to locate package postgresql-15\nE: Unable to locate package postgresql-client-15\n';
    expect(packageType.explainFailure!({ name: ['postgresql-15'] }, out)).toBe(
      'apt has no postgresql-15, postgresql-client-15 for this host (not in its release, or not in its apt sources)',
    );
    expect(packageType.explainFailure!({ name: 'x' }, "E: Package 'python3-distutils' has no installation candidate")).toContain('python3-distutils');
    expect(packageType.explainFailure!({ name: 'x' }, 'E: Sub-process /usr/bin/dpkg returned an error code (1)')).toBeUndefined();
  });

  it('records which variables a package name was rendered from, and where each was set', () => {
    const plan = compile(`
variables:
  db_version: {type: integer, default_by_codename: {bookworm: 15, trixie: 17}}
resources:
  - package: {name: ["postgresql-{{db_version}}"]}
`);
    const trixie = plan.byFacts!.variants[1]!.plan;
    expect(trixie.resources[0]!.origins).toEqual([
      { name: 'db_version', value: 17, from: expect.stringMatching(/^the default for trixie \(.*role\.yaml:3:\d+\)$/) },
    ]);
    const pinned = compile(
      `
variables:
  db_version: {type: integer, default_by_codename: {bookworm: 15, trixie: 17}}
resources:
  - package: {name: ["postgresql-{{db_version}}"]}
`,
      { db_version: 15 },
    );
    expect(pinned.resources[0]!.origins).toEqual([{ name: 'db_version', value: 15, from: 'inventories/test.yaml:7' }]);
  });
});
