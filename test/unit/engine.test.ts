// The engine end to end on this machine's real /bin/sh: compile a role, probe, apply, verify,
// handlers, failures. Everything happens in a temp dir.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { RoleLibrary } from '../../src/engine/roles.js';
import { compileHost } from '../../src/engine/compile.js';
import { runHost } from '../../src/engine/host-run.js';
import { buildProbeScript } from '../../src/engine/script.js';
import type { Host } from '../../src/inventory/types.js';
import { ConfigError, ConfigErrors } from '../../src/errors.js';
import { LocalSession, localConnection } from '../helpers/local-session.js';

let dir: string;
let state: string;
let session: LocalSession;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-engine-'));
  state = join(dir, 'state');
  session = new LocalSession('local', { KEEL_STATE_DIR: state });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function role(name: string, yaml: string, templates: Record<string, string> = {}): void {
  mkdirSync(join(dir, 'roles', name, 'templates'), { recursive: true });
  writeFileSync(join(dir, 'roles', name, 'role.yaml'), yaml);
  for (const [f, t] of Object.entries(templates)) writeFileSync(join(dir, 'roles', name, 'templates', f), t);
}

function host(roles: string[], vars: Record<string, unknown> = {}): Host {
  return {
    name: 'local',
    groups: ['all'],
    roles,
    vars: { base: dir, ...vars },
    location: { file: 'inventories/test.yaml', line: 3 },
    connection: localConnection(),
  };
}

function plan(roles: string[], vars: Record<string, unknown> = {}) {
  return compileHost(host(roles, vars), new RoleLibrary([join(dir, 'roles')]), { env: 'test', root: dir });
}

async function apply(roles: string[], vars: Record<string, unknown> = {}, check = false) {
  const s = new LocalSession('local', { KEEL_STATE_DIR: state });
  const r = await runHost(plan(roles, vars), s, { check, diff: true });
  return { ...r, session: s };
}

describe('engine on a real shell', () => {
  it('converges a file, then reports 0 changed in one round trip', async () => {
    role(
      'web',
      `
variables:
  web_greeting: {type: string, default: hello}
resources:
  - file: {path: "{{base}}/greeting.txt", content: "{{web_greeting}}\\n", mode: "0640"}
`,
    );
    const first = await apply(['web']);
    expect(first.error).toBeUndefined();
    expect(first.changed).toBe(1);
    expect(first.session.roundTrips).toBe(2); // probe, then apply+verify
    expect(readFileSync(join(dir, 'greeting.txt'), 'utf8')).toBe('hello\n');
    expect(statSync(join(dir, 'greeting.txt')).mode & 0o777).toBe(0o640);

    const second = await apply(['web']);
    expect(second.changed).toBe(0);
    expect(second.ok).toBe(1);
    expect(second.session.roundTrips).toBe(1);
    expect(second.resources[0]!.reason).toMatch(/has the wanted content/);

    const third = await apply(['web'], { web_greeting: 'bonjour' });
    expect(third.changed).toBe(1);
    expect(third.resources[0]!.diff).toMatchObject({ before: 'hello\n', after: 'bonjour\n' });
    expect(readFileSync(join(dir, 'greeting.txt'), 'utf8')).toBe('bonjour\n');
    // No temp files left next to the file.
    expect(readdirSync(dir).filter((f) => f.startsWith('.keel'))).toEqual([]);
  });

  it('check mode changes nothing and reports what would change', async () => {
    role('web', `resources:\n  - file: {path: "{{base}}/a.txt", content: "x"}\n`);
    const r = await apply(['web'], {}, true);
    expect(r.changed).toBe(1);
    expect(r.session.roundTrips).toBe(1);
    expect(existsSync(join(dir, 'a.txt'))).toBe(false);
  });

  it('a failing command reports its exit code and stderr, skips the rest, keeps notified handlers pending', async () => {
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/conf", content: "v1"}
    notify: restart
  - command: {run: "echo boom-on-stderr >&2; exit 7"}
  - file: {path: "{{base}}/after", content: "never"}
handlers:
  restart: {run: "echo restarted >> {{quote base}}/restarts"}
`,
    );
    const r = await apply(['app']);
    const failed = r.resources.find((x) => x.status === 'failed')!;
    expect(failed.id).toMatch(/command/);
    expect(failed.code).toBe(7);
    expect(failed.output).toContain('boom-on-stderr');
    expect(r.resources.find((x) => x.id.endsWith(':' + join(dir, 'after')))!.status).toBe('skipped');
    expect(existsSync(join(dir, 'after'))).toBe(false);
    expect(existsSync(join(dir, 'restarts'))).toBe(false);
    expect(readFileSync(join(state, 'pending-handlers'), 'utf8')).toBe('app:restart\n');

    // Fix the role: the next run runs the handler remembered from the failed run, once.
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/conf", content: "v1"}
    notify: restart
handlers:
  restart: {run: "echo restarted >> {{quote base}}/restarts"}
`,
    );
    const next = await apply(['app']);
    expect(next.failed).toBe(0);
    expect(next.resources.find((x) => x.id === 'handler/app:restart')!.status).toBe('changed');
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
    const again = await apply(['app']);
    expect(again.changed).toBe(0);
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
  });

  it('runs a notified handler once, at the end, only when something changed', async () => {
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/one", content: "1"}
    notify: restart
  - file: {path: "{{base}}/two", content: "2"}
    notify: restart
handlers:
  restart: {run: "echo restarted >> {{quote base}}/restarts"}
`,
    );
    await apply(['app']);
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
    const again = await apply(['app']);
    expect(again.changed).toBe(0);
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
  });

  it('a guarded command runs at most once per run: still unmet after it ran, the host fails saying so', async () => {
    role(
      'app',
      `
resources:
  - command: {run: "echo ran >> {{quote base}}/c", creates: "{{base}}/never"}
  - command: {run: "echo ran >> {{quote base}}/u", unless: "test -e {{quote base}}/never2"}
  - file: {path: "{{base}}/after", content: "x"}
`,
    );
    const r = await apply(['app']);
    expect(readFileSync(join(dir, 'c'), 'utf8')).toBe('ran\n');
    const failed = r.resources.find((x) => x.status === 'failed')!;
    expect(failed.reason).toBe(`ran, but ${join(dir, 'never')} still does not exist`);
    expect(r.failed).toBe(1);
    // Every other resource ran exactly once too, and none ran a second time in a later pass.
    expect(existsSync(join(dir, 'u')) ? readFileSync(join(dir, 'u'), 'utf8') : '').not.toBe('ran\nran\n');
    expect(r.session.roundTrips).toBe(2);

    role(
      'app',
      `
resources:
  - command: {run: "echo ran >> {{quote base}}/u2", unless: "test -e {{quote base}}/never2"}
`,
    );
    const u = await apply(['app']);
    expect(readFileSync(join(dir, 'u2'), 'utf8')).toBe('ran\n');
    expect(u.resources[0]).toMatchObject({ status: 'failed' });
    expect(u.resources[0]!.reason).toMatch(/^ran, but `unless` still fails \(exit 1\): test -e /);
  });

  it('shell guards start before any type is probed, and each decides its own command', async () => {
    writeFileSync(join(dir, 'present'), '');
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/conf", content: "x\\n"}
  - command: {run: "echo ran >> {{quote base}}/a", unless: "test -e {{quote base}}/present"}
  - command: {run: "echo ran >> {{quote base}}/b", only_if: "test -e {{quote base}}/absent"}
  - command: {run: "echo ran >> {{quote base}}/c", unless: "exit 3", creates: "{{base}}/c"}
  - command: {run: "echo ran >> {{quote base}}/d", only_if: "test -e {{quote base}}/present", creates: "{{base}}/d"}
`,
    );
    const script = buildProbeScript(plan(['app']).resources, '@@n', { wantDiff: false });
    const fileSection = script.search(/S %s\\n' '?@@n'? '?file'?\n/);
    expect(fileSection).toBeGreaterThan(-1);
    expect(script.indexOf('& keel_g0=$!')).toBeGreaterThan(-1);
    expect(script.indexOf('& keel_g0=$!')).toBeLessThan(fileSection);
    const first = await apply(['app']);
    expect(first.resources.map((r) => r.status)).toEqual(['changed', 'ok', 'ok', 'changed', 'changed']);
    expect(['a', 'b', 'c', 'd'].map((f) => existsSync(join(dir, f)))).toEqual([false, false, true, true]);
    expect((await apply(['app'])).changed).toBe(0);
  });

  it('a file a later resource rewrote in the same run is written once more, then converges', async () => {
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/conf", content: "mine\\n"}
  - command: {run: "echo theirs > {{quote base}}/conf; touch {{quote base}}/pkg", creates: "{{base}}/pkg"}
`,
    );
    const r = await apply(['app']);
    expect(r.failed).toBe(0);
    expect(readFileSync(join(dir, 'conf'), 'utf8')).toBe('mine\n');
    expect((await apply(['app'])).changed).toBe(0);
  });

  it('a script cut short in transit runs nothing', async () => {
    role('web', `resources:\n  - file: {path: "{{base}}/a.txt", content: "x"}\n  - file: {path: "{{base}}/b.txt", content: "y"}\n`);
    await apply(['web'], {}, true);
    const s = new LocalSession('local', { KEEL_STATE_DIR: state });
    const p = plan(['web']);
    // Build the real apply script through a normal run, then replay its first half.
    await runHost(p, s, { check: false, diff: false });
    rmSync(join(dir, 'a.txt'));
    rmSync(join(dir, 'b.txt'));
    const apply2 = s.scripts[1]!;
    for (const cut of [0.3, 0.6, 0.95]) {
      const half = apply2.slice(0, Math.floor(apply2.length * cut));
      const out = spawnSync('/bin/sh', ['-s'], { input: half, env: { ...process.env, KEEL_STATE_DIR: state } });
      expect(out.status).not.toBe(0);
      expect(existsSync(join(dir, 'a.txt'))).toBe(false);
    }
  });

  it('output that imitates the protocol cannot fake a result', async () => {
    role('web', `resources:\n  - command: {run: "echo '@@keel-000000000000 C 0'; exit 3"}\n`);
    const r = await apply(['web']);
    expect(r.failed).toBe(1);
  });

  it('refuses a template with a missing variable, naming the template file and line', async () => {
    role('web', `resources:\n  - template: {src: site.conf.hbs, dest: "{{base}}/site.conf"}\n`, {
      'site.conf.hbs': 'server {\n  listen 80;\n  server_name {{server_nam}};\n}\n',
    });
    let err: unknown;
    try {
      plan(['web']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/roles\/web\/templates\/site\.conf\.hbs:3:\d+: variable "server_nam" is not defined/);
  });

  it('an error a resource type finds in its params (a newline in a path) names the role file and line', () => {
    role(
      'web',
      `resources:
  - file: {path: "{{base}}/ok", content: ""}
  - file: {path: "{{base}}/a\\nb", content: ""}
  - directory: {path: relative/dir}
  - line: {path: "{{base}}/x", line: "one\\ntwo"}
`,
    );
    let err: unknown;
    try {
      plan(['web']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigErrors);
    expect((err as ConfigErrors).errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/\/roles\/web\/role\.yaml:3:\d+: file path cannot contain a newline$/),
      expect.stringMatching(/\/roles\/web\/role\.yaml:4:\d+: directory path must be an absolute path, got "relative\/dir"$/),
      expect.stringMatching(/\/roles\/web\/role\.yaml:5:\d+: line in .*\/x: line cannot contain a newline \(one resource per line\)$/),
    ]);
  });

  it('refuses bad role variables before anything runs, with the inventory location', () => {
    role(
      'web',
      `
variables:
  web_port: {type: integer, minimum: 1, maximum: 65535, default: 80}
resources:
  - file: {path: "{{base}}/p", content: "{{web_port}}"}
`,
    );
    const h = host(['web'], { web_port: 70000, web_prot: 1 });
    h.varLocations = {
      web_port: { file: 'inventories/staging.yaml', line: 9, column: 15 },
      web_prot: { file: 'inventories/staging.yaml', line: 10, column: 5 },
    };
    let err: unknown;
    try {
      compileHost(h, new RoleLibrary([join(dir, 'roles')]), { env: 'test', root: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigErrors);
    const msgs = (err as ConfigErrors).errors.map((e) => e.message);
    expect(msgs).toContainEqual(expect.stringMatching(/^inventories\/staging\.yaml:9:15: variable "web_port" \(role web\) must be <= 65535/));
    expect(msgs).toContainEqual(
      expect.stringMatching(/^inventories\/staging\.yaml:10:5: unknown variable "web_prot" for role web \(did you mean "web_port"\?\)/),
    );
  });

  it('skips a resource whose when: is false, and loops', async () => {
    role(
      'web',
      `
variables:
  web_tls: {type: boolean, default: true}
resources:
  - file: {path: "{{base}}/{{item}}", content: "x"}
    loop: [a, b, c]
  - file: {path: "{{base}}/tls", content: "x"}
    when: web_tls
`,
    );
    const r = await apply(['web'], { web_tls: false });
    expect(r.changed).toBe(3);
    expect(r.resources.filter((x) => x.status === 'skipped')).toHaveLength(1);
    expect(existsSync(join(dir, 'tls'))).toBe(false);
  });

  it('--tags keeps only tagged resources (a role name is a tag)', () => {
    role(
      'web',
      `
resources:
  - file: {path: "{{base}}/a", content: "x"}
    tags: [config]
  - file: {path: "{{base}}/b", content: "y"}
`,
    );
    role('db', `resources:\n  - file: {path: "{{base}}/c", content: "z"}\n`);
    const lib = new RoleLibrary([join(dir, 'roles')]);
    const ids = (tags: string[]) =>
      compileHost(host(['web', 'db']), lib, { env: 'test', root: dir, tags }).resources.map((r) => r.id.slice(r.id.indexOf('/') + 1));
    expect(ids(['config'])).toEqual([`file:${join(dir, 'a')}`]);
    expect(ids(['db'])).toEqual([`file:${join(dir, 'c')}`]);
    expect(ids([])).toHaveLength(3);
  });

  it('a misspelled variable in when: or {{#if}} is an error, not a silent false; declared-but-unset is fine', () => {
    role(
      'web',
      `
variables:
  web_tls: {type: boolean}
resources:
  - file: {path: "{{base}}/a", content: "x"}
    when: web_tsl
`,
    );
    expect(() => plan(['web'])).toThrow(/role\.yaml:5:\d+: variable "web_tsl" is not defined/);
    role(
      'web',
      `
variables:
  web_tls: {type: boolean}
resources:
  - file: {path: "{{base}}/a", content: "{{#if web_tls}}tls{{else}}plain{{/if}} {{#if (eq host.name \\"local\\")}}here{{/if}}"}
    when: not web_tls
`,
    );
    expect(plan(['web']).resources[0]!.params.content).toBe('plain here');
    role(
      'web',
      `resources:\n  - file: {path: "{{base}}/a", content: "{{#each (json base)}}{{nothing_checked_here}}{{/each}}{{#if (eq secrets.typo 1)}}x{{/if}}"}\n`,
    );
    expect(() => plan(['web'])).toThrow(/variable "secrets.typo" is not defined/);
  });

  it('reports every unresolvable variable at once, where each was defined', () => {
    role(
      'web',
      `
variables:
  web_a: {type: string, default: "{{secrets.a}}"}
  web_b: {type: string, default: "{{missing_b}}"}
resources:
  - file: {path: "{{base}}/a", content: "{{web_a}}{{web_b}}"}
`,
    );
    let err: unknown;
    try {
      plan(['web']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigErrors);
    const msgs = (err as ConfigErrors).errors.map((e) => e.message);
    expect(msgs).toEqual([
      expect.stringMatching(/roles\/web\/role\.yaml:3:\d+: variable "secrets.a" is not defined/),
      expect.stringMatching(/roles\/web\/role\.yaml:4:\d+: variable "missing_b" is not defined/),
    ]);
    expect((err as ConfigErrors).errors[0]!.hint).toMatch(/keel secrets set test a/);
  });
});

describe('role instances, host conditions, handler coverage, shared variables', () => {
  function instances(list: { role: string; name?: string; vars?: Record<string, unknown> }[], vars: Record<string, unknown> = {}): Host {
    const h = host([...new Set(list.map((i) => i.role))], vars);
    h.roleInstances = list.map((i) => ({
      role: i.role,
      ...(i.name !== undefined && { name: i.name }),
      vars: i.vars ?? {},
      varLocations: {},
      location: h.location,
    }));
    return h;
  }
  const lib = () => new RoleLibrary([join(dir, 'roles')]);
  async function applyHost(h: Host) {
    const s = new LocalSession('local', { KEEL_STATE_DIR: state });
    const r = await runHost(compileHost(h, lib(), { env: 'test', root: dir }), s, { check: false, diff: false });
    return { ...r, session: s };
  }
  const lines = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean) : []);

  const DAEMON = `
variables:
  daemon_name: {type: string, pattern: '^[a-z]+$', default: "{{role_instance}}"}
  daemon_command: {type: string}
  daemon_log: {type: string, default: "{{base}}/{{daemon_name}}.log"}
resources:
  - file: {path: "{{base}}/{{daemon_name}}.unit", content: "ExecStart={{daemon_command}} >> {{daemon_log}}\\n"}
    notify: restart
handlers:
  restart: {run: "echo {{quote daemon_name}} >> {{quote base}}/restarts"}
`;

  it('one role used twice with different variables: ids and handlers per instance, only the changed one restarts', async () => {
    role('daemon', DAEMON);
    const both = (recalc: string) =>
      instances([
        { role: 'daemon', name: 'recalc', vars: { daemon_command: recalc } },
        { role: 'daemon', name: 'notify', vars: { daemon_command: 'notify.py' } },
      ]);
    const p = compileHost(both('recalc.py'), lib(), { env: 'test', root: dir });
    expect(p.resources.map((r) => r.id)).toEqual([`daemon[recalc]/file:${join(dir, 'recalc.unit')}`, `daemon[notify]/file:${join(dir, 'notify.unit')}`]);
    expect([...p.handlers.keys()]).toEqual(['daemon[recalc]:restart', 'daemon[notify]:restart']);
    expect(p.resources[0]!.params.content).toBe(`ExecStart=recalc.py >> ${join(dir, 'recalc.log')}\n`);

    const first = await applyHost(both('recalc.py'));
    expect(first.failed).toBe(0);
    expect(lines('restarts').sort()).toEqual(['notify', 'recalc']);
    expect((await applyHost(both('recalc.py'))).changed).toBe(0);
    const third = await applyHost(both('recalc.py --fast'));
    expect(third.resources.filter((r) => r.status === 'changed').map((r) => r.id)).toEqual([
      `daemon[recalc]/file:${join(dir, 'recalc.unit')}`,
      'handler/daemon[recalc]:restart',
    ]);
    expect(lines('restarts')).toEqual([...lines('restarts').slice(0, 2), 'recalc']);
  });

  it('notify: is rendered per looped item: a resource notifies the instance its item names', async () => {
    role('daemon', DAEMON);
    role(
      'settings',
      `
resources:
  - file: {path: "{{base}}/{{item}}.settings", content: "s"}
    loop: [recalc]
    notify: "daemon[{{item}}]:restart"
`,
    );
    const h = instances([
      { role: 'daemon', name: 'recalc', vars: { daemon_command: 'r' } },
      { role: 'daemon', name: 'notify', vars: { daemon_command: 'n' } },
      { role: 'settings' },
    ]);
    expect(compileHost(h, lib(), { env: 'test', root: dir }).resources[2]!.notify).toEqual(['daemon[recalc]:restart']);
    await applyHost(h);
    rmSync(join(dir, 'restarts'));
    rmSync(join(dir, 'recalc.settings'));
    await applyHost(h);
    expect(lines('restarts')).toEqual(['recalc']);
  });

  it("instance variables sit above the host's, below -e; their errors name the instance's role", () => {
    role('daemon', DAEMON);
    const h = instances([{ role: 'daemon', name: 'recalc', vars: { daemon_command: 'mine', daemon_log: '/x/{{daemon_command}}' } }], {
      daemon_command: 'host-wide',
    });
    expect(compileHost(h, lib(), { env: 'test', root: dir }).resources[0]!.params.content).toBe('ExecStart=mine >> /x/mine\n');
    h.literalVars = ['daemon_command'];
    h.vars.daemon_command = 'from -e';
    expect(compileHost(h, lib(), { env: 'test', root: dir }).resources[0]!.params.content).toBe('ExecStart=from -e >> /x/from -e\n');
    const bad = instances([{ role: 'daemon', name: 'x', vars: { daemon_command: 'a', daemon_name: 'NOT OK' } }]);
    expect(() => compileHost(bad, lib(), { env: 'test', root: dir })).toThrow(/variable "daemon_name" \(role daemon\) must match pattern/);
  });

  it("a role notifies another role's handler by role:handler; an unknown one, or an ambiguous instance, is an error", async () => {
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/app.conf", content: "a"}
    notify: restart app
handlers:
  restart app: {run: "echo restart >> {{quote base}}/app-events"}
`,
    );
    role(
      'worker',
      `
resources:
  - file: {path: "{{base}}/worker.conf", content: "w"}
    notify: "app:restart app"
`,
    );
    const r = await apply(['app', 'worker']);
    expect(r.failed).toBe(0);
    expect(lines('app-events')).toEqual(['restart']);
    role('worker', `resources:\n  - file: {path: "{{base}}/w", content: "w"}\n    notify: "app:restart ap"\n`);
    expect(() => plan(['app', 'worker'])).toThrow(/notifies unknown handler "app:restart ap"/);
    expect(() => plan(['worker'])).toThrow(/notifies unknown handler "app:restart ap" \(role app is not applied to host local\)/);
    role('daemon', DAEMON);
    role('worker', `resources:\n  - file: {path: "{{base}}/w", content: "w"}\n    notify: "daemon:restart"\n`);
    const h = instances([{ role: 'daemon', name: 'recalc', vars: { daemon_command: 'x' } }, { role: 'worker' }]);
    expect(() => compileHost(h, lib(), { env: 'test', root: dir })).toThrow(
      /role daemon is used here as daemon\[recalc\]: name the instance, e\.g\. "daemon\[recalc\]:restart"/,
    );
  });

  it('a restart covers a reload: when both are due only the restart runs, whatever their order; a resource can cover a handler', async () => {
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/env", content: "e"}
    notify: reload app
  - file: {path: "{{base}}/unit", content: "u"}
    notify: restart app
  - command: {run: "echo start >> {{quote base}}/app-events; touch {{quote base}}/running", creates: "{{base}}/running"}
    covers: [restart app]
handlers:
  reload app: {run: "echo reload >> {{quote base}}/app-events"}
  restart app: {run: "echo restart >> {{quote base}}/app-events", covers: [reload app]}
`,
    );
    // First converge: the start covers the restart, the restart the reload: started once.
    expect((await apply(['app'])).failed).toBe(0);
    expect(lines('app-events')).toEqual(['start']);
    expect(readFileSync(join(state, 'pending-handlers'), 'utf8')).toBe('');
    // Both notified while it runs: one restart.
    rmSync(join(dir, 'env'));
    rmSync(join(dir, 'unit'));
    const r = await apply(['app']);
    expect(lines('app-events')).toEqual(['start', 'restart']);
    expect(r.resources.filter((x) => x.id.startsWith('handler/')).map((x) => x.id)).toEqual(['handler/app:restart app']);
    // Only the reload due: the reload runs.
    rmSync(join(dir, 'env'));
    await apply(['app']);
    expect(lines('app-events')).toEqual(['start', 'restart', 'reload']);
  });

  it('a failed covering handler stays pending with what it covers; the next run restarts once', async () => {
    role(
      'app',
      `
resources:
  - file: {path: "{{base}}/env", content: "e"}
    notify: reload app
  - file: {path: "{{base}}/unit", content: "u"}
    notify: restart app
handlers:
  reload app: {run: "echo reload >> {{quote base}}/app-events"}
  restart app: {run: "test -e {{quote base}}/can-start && echo restart >> {{quote base}}/app-events", covers: [reload app]}
`,
    );
    const r = await apply(['app']);
    expect(r.resources.find((x) => x.id === 'handler/app:restart app')!.status).toBe('failed');
    expect(lines('app-events')).toEqual([]);
    expect(readFileSync(join(state, 'pending-handlers'), 'utf8').split('\n').filter(Boolean).sort()).toEqual(['app:reload app', 'app:restart app']);
    writeFileSync(join(dir, 'can-start'), '');
    await apply(['app']);
    expect(lines('app-events')).toEqual(['restart']);
  });

  it('when: {exists} is decided on the host at each probe: a path created during the run turns the resource on in the same run', async () => {
    role(
      'web',
      `
variables:
  web_tls: {type: boolean}
resources:
  - file: {path: "{{base}}/site.conf", content: "plain\\n"}
    when: {missing: "{{base}}/cert.pem"}
    notify: reload
  - command: {run: "echo cert > {{quote base}}/cert.pem", creates: "{{base}}/cert.pem"}
    flush_handlers: [reload]
  - file: {path: "{{base}}/site.conf", content: "tls\\n"}
    when: {exists: "{{base}}/cert.pem", if: "web_tls"}
    notify: reload
handlers:
  reload: {run: "echo \\"reload $(cat {{quote base}}/site.conf)\\" >> {{quote base}}/events"}
`,
    );
    const r = await apply(['web'], { web_tls: true });
    expect(r.failed).toBe(0);
    expect(readFileSync(join(dir, 'site.conf'), 'utf8')).toBe('tls\n');
    // The plain site was live (handlers flushed) before the command ran; the TLS one after.
    expect(lines('events')).toEqual(['reload plain', 'reload tls']);
    expect(r.session.roundTrips).toBe(3);
    const again = await apply(['web'], { web_tls: true });
    expect(again.changed).toBe(0);
    expect(again.session.roundTrips).toBe(1);
    expect(again.resources.find((x) => x.status === 'skipped')!.reason).toBe(`when: ${join(dir, 'cert.pem')} exists on the host`);
    // `if:` is decided on the controller: false skips it whatever the host has.
    const off = plan(['web'], { web_tls: false });
    expect(off.resources[2]!.skipped).toBe('when: web_tls is false');
    // Check mode decides from the probe alone.
    rmSync(join(dir, 'cert.pem'));
    const check = await apply(['web'], { web_tls: true }, true);
    expect(check.resources.map((x) => x.status)).toEqual(['changed', 'changed', 'skipped']);
  });

  it('a template rendered two ways with vars:, and flush_handlers: true runs every handler due', async () => {
    role(
      'web',
      `
resources:
  - template: {src: site.hbs, dest: "{{base}}/plain", vars: {tls: false, port: "{{port_http}}"}}
    notify: [a, b]
  - template: {src: site.hbs, dest: "{{base}}/tls", vars: {tls: true, port: 443}}
    flush_handlers: true
handlers:
  a: {run: "echo a >> {{quote base}}/events"}
  b: {run: "test -e {{quote base}}/plain && echo b >> {{quote base}}/events"}
`,
      { 'site.hbs': '{{#if tls}}ssl {{/if}}listen {{port}}\n' },
    );
    const r = await apply(['web'], { port_http: 8080 });
    expect(r.failed).toBe(0);
    expect(readFileSync(join(dir, 'plain'), 'utf8')).toBe('listen 8080\n');
    expect(readFileSync(join(dir, 'tls'), 'utf8')).toBe('ssl listen 443\n');
    expect(lines('events')).toEqual(['a', 'b']);
  });

  it('when: rejects unknown keys and relative paths', () => {
    role('web', `resources:\n  - file: {path: "{{base}}/a", content: "x"}\n    when: {exist: /x}\n`);
    expect(() => plan(['web'])).toThrow(/role\.yaml:2:\d+: when: unknown key "exist" \(expected: exists, missing, if\)/);
    role('web', `resources:\n  - file: {path: "{{base}}/a", content: "x"}\n    when: {exists: "etc/x"}\n`);
    expect(() => plan(['web'])).toThrow(/when: a host path must be absolute/);
  });

  it('shared variables: declared once in roles/vars.yaml, read by roles through uses:, one default; old re-declarations still work', () => {
    mkdirSync(join(dir, 'roles'), { recursive: true });
    writeFileSync(
      join(dir, 'roles', 'vars.yaml'),
      'variables:\n  app_user: {type: string, pattern: "^[a-z]+$", default: app}\n  app_root: {type: string, default: "/home/{{app_user}}/webapp"}\n',
    );
    role('one', `uses: [app_user, app_root]\nresources:\n  - file: {path: "{{base}}/one", content: "{{app_root}}"}\n`);
    role('two', `uses: [app_root]\nresources:\n  - file: {path: "{{base}}/two", content: "{{app_root}}"}\n`);
    // An older role: declares it again without a default (fine), or with one (it wins, as before).
    role('old', `variables:\n  app_user: {type: string}\nresources:\n  - file: {path: "{{base}}/old", content: "{{app_user}}"}\n`);
    role('older', `variables:\n  app_user: {type: string, default: legacy}\nresources:\n  - file: {path: "{{base}}/older", content: "{{app_user}}"}\n`);
    const contents = (roles: string[], vars = {}) => plan(roles, vars).resources.map((r) => r.params.content);
    expect(contents(['two'])).toEqual(['/home/app/webapp']);
    expect(contents(['one', 'two'], { app_user: 'amy' })).toEqual(['/home/amy/webapp', '/home/amy/webapp']);
    expect(contents(['old'])).toEqual(['app']);
    expect(contents(['older', 'two'])).toEqual(['legacy', '/home/legacy/webapp']);
    // Validated against the shared schema, for every role that reads it.
    expect(() => plan(['two'], { app_user: 'Bad User' })).toThrow(/variable "app_user" \(shared, roles\/vars\.yaml\) must match pattern/);
    role('typo', `uses: [app_rot]\nresources: []\n`);
    expect(() => plan(['typo'])).toThrow(/role\.yaml:1:\d+: uses: "app_rot" is not a shared variable \(did you mean "app_root"\?\)/);
  });
});
