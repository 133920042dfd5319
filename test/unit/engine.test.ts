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
import type { Host } from '../../src/inventory/types.js';
import { ConfigError, ConfigErrors } from '../../src/errors.js';
import { LocalSession } from '../helpers/local-session.js';

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
    connection: { address: '127.0.0.1', port: 22, user: 'root', keyFiles: [], agent: false, jump: [], connectTimeoutMs: 1000, become: false, becomeUser: 'root' },
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
    role('web', `
variables:
  web_greeting: {type: string, default: hello}
resources:
  - file: {path: "{{base}}/greeting.txt", content: "{{web_greeting}}\\n", mode: "0640"}
`);
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
    role('app', `
resources:
  - file: {path: "{{base}}/conf", content: "v1"}
    notify: restart
  - command: {run: "echo boom-on-stderr >&2; exit 7"}
  - file: {path: "{{base}}/after", content: "never"}
handlers:
  restart: {run: "echo restarted >> {{base}}/restarts"}
`);
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
    role('app', `
resources:
  - file: {path: "{{base}}/conf", content: "v1"}
    notify: restart
handlers:
  restart: {run: "echo restarted >> {{base}}/restarts"}
`);
    const next = await apply(['app']);
    expect(next.failed).toBe(0);
    expect(next.resources.find((x) => x.id === 'handler/app:restart')!.status).toBe('changed');
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
    const again = await apply(['app']);
    expect(again.changed).toBe(0);
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
  });

  it('runs a notified handler once, at the end, only when something changed', async () => {
    role('app', `
resources:
  - file: {path: "{{base}}/one", content: "1"}
    notify: restart
  - file: {path: "{{base}}/two", content: "2"}
    notify: restart
handlers:
  restart: {run: "echo restarted >> {{base}}/restarts"}
`);
    await apply(['app']);
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
    const again = await apply(['app']);
    expect(again.changed).toBe(0);
    expect(readFileSync(join(dir, 'restarts'), 'utf8')).toBe('restarted\n');
  });

  it('a guarded command runs at most once per run: still unmet after it ran, the host fails saying so', async () => {
    role('app', `
resources:
  - command: {run: "echo ran >> {{base}}/c", creates: "{{base}}/never"}
  - command: {run: "echo ran >> {{base}}/u", unless: "test -e {{base}}/never2"}
  - file: {path: "{{base}}/after", content: "x"}
`);
    const r = await apply(['app']);
    expect(readFileSync(join(dir, 'c'), 'utf8')).toBe('ran\n');
    const failed = r.resources.find((x) => x.status === 'failed')!;
    expect(failed.reason).toBe(`ran, but ${join(dir, 'never')} still does not exist`);
    expect(r.failed).toBe(1);
    // Every other resource ran exactly once too, and none ran a second time in a later pass.
    expect(existsSync(join(dir, 'u')) ? readFileSync(join(dir, 'u'), 'utf8') : '').not.toBe('ran\nran\n');
    expect(r.session.roundTrips).toBe(2);

    role('app', `
resources:
  - command: {run: "echo ran >> {{base}}/u2", unless: "test -e {{base}}/never2"}
`);
    const u = await apply(['app']);
    expect(readFileSync(join(dir, 'u2'), 'utf8')).toBe('ran\n');
    expect(u.resources[0]).toMatchObject({ status: 'failed' });
    expect(u.resources[0]!.reason).toMatch(/^ran, but `unless` still fails \(exit 1\): test -e /);
  });

  it('a file a later resource rewrote in the same run is written once more, then converges', async () => {
    role('app', `
resources:
  - file: {path: "{{base}}/conf", content: "mine\\n"}
  - command: {run: "echo theirs > {{base}}/conf; touch {{base}}/pkg", creates: "{{base}}/pkg"}
`);
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
    role('web', `resources:
  - file: {path: "{{base}}/ok", content: ""}
  - file: {path: "{{base}}/a\\nb", content: ""}
  - directory: {path: relative/dir}
  - line: {path: "{{base}}/x", line: "one\\ntwo"}
`);
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
    role('web', `
variables:
  web_port: {type: integer, minimum: 1, maximum: 65535, default: 80}
resources:
  - file: {path: "{{base}}/p", content: "{{web_port}}"}
`);
    const h = host(['web'], { web_port: 70000, web_prot: 1 });
    h.varLocations = { web_port: { file: 'inventories/staging.yaml', line: 9, column: 15 }, web_prot: { file: 'inventories/staging.yaml', line: 10, column: 5 } };
    let err: unknown;
    try {
      compileHost(h, new RoleLibrary([join(dir, 'roles')]), { env: 'test', root: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigErrors);
    const msgs = (err as ConfigErrors).errors.map((e) => e.message);
    expect(msgs).toContainEqual(expect.stringMatching(/^inventories\/staging\.yaml:9:15: variable "web_port" \(role web\) must be <= 65535/));
    expect(msgs).toContainEqual(expect.stringMatching(/^inventories\/staging\.yaml:10:5: unknown variable "web_prot" for role web \(did you mean "web_port"\?\)/));
  });

  it('skips a resource whose when: is false, and loops', async () => {
    role('web', `
variables:
  web_tls: {type: boolean, default: true}
resources:
  - file: {path: "{{base}}/{{item}}", content: "x"}
    loop: [a, b, c]
  - file: {path: "{{base}}/tls", content: "x"}
    when: web_tls
`);
    const r = await apply(['web'], { web_tls: false });
    expect(r.changed).toBe(3);
    expect(r.resources.filter((x) => x.status === 'skipped')).toHaveLength(1);
    expect(existsSync(join(dir, 'tls'))).toBe(false);
  });

  it('--tags keeps only tagged resources (a role name is a tag)', () => {
    role('web', `
resources:
  - file: {path: "{{base}}/a", content: "x"}
    tags: [config]
  - file: {path: "{{base}}/b", content: "y"}
`);
    role('db', `resources:\n  - file: {path: "{{base}}/c", content: "z"}\n`);
    const lib = new RoleLibrary([join(dir, 'roles')]);
    const ids = (tags: string[]) => compileHost(host(['web', 'db']), lib, { env: 'test', root: dir, tags }).resources.map((r) => r.id.slice(r.id.indexOf('/') + 1));
    expect(ids(['config'])).toEqual([`file:${join(dir, 'a')}`]);
    expect(ids(['db'])).toEqual([`file:${join(dir, 'c')}`]);
    expect(ids([])).toHaveLength(3);
  });

  it('a misspelled variable in when: or {{#if}} is an error, not a silent false; declared-but-unset is fine', () => {
    role('web', `
variables:
  web_tls: {type: boolean}
resources:
  - file: {path: "{{base}}/a", content: "x"}
    when: web_tsl
`);
    expect(() => plan(['web'])).toThrow(/role\.yaml:5:\d+: variable "web_tsl" is not defined/);
    role('web', `
variables:
  web_tls: {type: boolean}
resources:
  - file: {path: "{{base}}/a", content: "{{#if web_tls}}tls{{else}}plain{{/if}} {{#if (eq host.name \\"local\\")}}here{{/if}}"}
    when: not web_tls
`);
    expect(plan(['web']).resources[0]!.params.content).toBe('plain here');
    role('web', `resources:\n  - file: {path: "{{base}}/a", content: "{{#each (json base)}}{{nothing_checked_here}}{{/each}}{{#if (eq secrets.typo 1)}}x{{/if}}"}\n`);
    expect(() => plan(['web'])).toThrow(/variable "secrets.typo" is not defined/);
  });

  it('reports every unresolvable variable at once, where each was defined', () => {
    role('web', `
variables:
  web_a: {type: string, default: "{{secrets.a}}"}
  web_b: {type: string, default: "{{missing_b}}"}
resources:
  - file: {path: "{{base}}/a", content: "{{web_a}}{{web_b}}"}
`);
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
