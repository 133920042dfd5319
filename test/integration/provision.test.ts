// keel core against real targets: systemd Debian containers with real sshd, reached over SSH
// on 127.0.0.1, driven through the real CLI.
import { until } from '../helpers/wait.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTarget, type TestTarget } from '../helpers/target.js';
import { runKeel } from '../helpers/cli.js';
import { newEd25519PrivateKey } from '../../src/target/keys.js';
import { fingerprint } from '../../src/ssh/known-hosts.js';

let target: TestTarget;
let root: string;

function project(inventory: string, roles: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-it-'));
  mkdirSync(join(dir, 'inventories'));
  writeFileSync(join(dir, 'inventories', 'itest.yaml'), inventory);
  for (const [name, yaml] of Object.entries(roles)) {
    mkdirSync(join(dir, 'roles', name, 'templates'), { recursive: true });
    writeFileSync(join(dir, 'roles', name, 'role.yaml'), yaml);
  }
  return dir;
}

function inv(t: TestTarget, extra = '', hostExtra = '', roles = '[demo]'): string {
  return `known_hosts: ${t.knownHostsFile}
vars: {demo_title: "keel integration test"}
hosts:
  web1: {address: 127.0.0.1, port: ${t.port}, user: root, key: ${t.keyFile}, groups: [web]${hostExtra}}
${extra}
groups:
  web: {roles: ${roles}}
`;
}

beforeAll(async () => {
  target = await startTarget({ users: true });
  root = project(inv(target));
});
afterAll(async () => {
  await target?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('keel provision on a real target', () => {
  it('applies the demo role, then a second run reports 0 changed, and the page answers through nginx', async () => {
    const first = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    expect(first.stderr).toBe('');
    const a = first.json();
    expect(a.failed).toBe(0);
    expect(a.unreachable).toBe(0);
    expect(a.changed).toBeGreaterThan(5);
    expect(first.code).toBe(0);
    // probe; the package install (a barrier); the rest, decided again on fresh facts.
    expect(a.hosts[0].roundTrips).toBe(3);

    const second = await runKeel(['provision', 'itest', '--output', 'json'], { root });
    const b = second.json();
    expect(second.code).toBe(0);
    expect(b.changed).toBe(0);
    expect(b.failed).toBe(0);
    expect(b.hosts[0].roundTrips).toBe(1);
    for (const r of b.hosts[0].resources) expect(r.reason.length).toBeGreaterThan(0);

    const page = await target.exec(['curl', '-s', 'http://127.0.0.1/']);
    expect(page.stdout).toContain('<h1>keel integration test</h1>');
    const log = await target.exec(['sh', '-c', 'stat -c %U /srv/demo/logs; grep -c "^\\s*server_tokens off;" /etc/nginx/nginx.conf']);
    expect(log.stdout.split('\n').slice(0, 2)).toEqual(['demo', '1']);
  });

  it('plan shows a diff of a changed template and changes nothing', async () => {
    const p = await runKeel(['plan', 'itest', '-e', 'demo_title=Changed title'], { root });
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('\n-<h1>keel integration test</h1>\n');
    expect(p.stdout).toContain('\n+<h1>Changed title</h1>\n');
    expect(p.stdout).toContain('RECAP itest (check mode: nothing was changed)');
    const page = await target.exec(['curl', '-s', 'http://127.0.0.1/']);
    expect(page.stdout).toContain('<h1>keel integration test</h1>');
  });

  it('an unreachable host is reported (exit 2) and the other host still finishes', async () => {
    const dir = project(inv(target, '  dead: {address: 127.0.0.1, port: 1, user: root, key: ' + target.keyFile + ', groups: [web], connect_timeout: 3}'));
    try {
      const r = await runKeel(['provision', 'itest', '--output', 'json'], { root: dir });
      expect(r.code).toBe(2);
      const j = r.json();
      const dead = j.hosts.find((h: any) => h.name === 'dead');
      expect(dead.unreachable).toBe(1);
      expect(dead.error).toMatch(/127\.0\.0\.1:1.*(refused|ECONNREFUSED)/i);
      const web1 = j.hosts.find((h: any) => h.name === 'web1');
      expect(web1.unreachable).toBe(0);
      expect(web1.failed).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a changed host key before authenticating, showing both fingerprints', async () => {
    const dir = project(inv(target));
    const kh = join(dir, 'known_hosts');
    // A different ed25519 key for the same [127.0.0.1]:port.
    writeFileSync(kh, `[127.0.0.1]:${target.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    writeFileSync(join(dir, 'inventories', 'itest.yaml'), inv(target).replace(target.knownHostsFile, kh));
    try {
      const r = await runKeel(['provision', 'itest'], { root: dir });
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/host key.*changed/i);
      expect((r.stdout.match(/SHA256:[A-Za-z0-9+/]{43}/g) ?? []).length).toBeGreaterThanOrEqual(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown host with the command to trust it; --accept-new-host-keys records it', async () => {
    const dir = project('');
    const kh = join(dir, 'known_hosts');
    writeFileSync(join(dir, 'inventories', 'itest.yaml'), inv(target).replace(target.knownHostsFile, kh));
    try {
      const r = await runKeel(['provision', 'itest', '--check'], { root: dir });
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/--accept-new-host-keys/);
      const ok = await runKeel(['provision', 'itest', '--check', '--accept-new-host-keys'], { root: dir });
      expect(ok.code).toBe(0);
      expect(readFileSync(kh, 'utf8')).toContain(target.hostKey.split(' ')[1]!);
      // It says what it trusted: the host, the key type and the fingerprint to compare.
      const fp = fingerprint(Buffer.from(target.hostKey.split(' ')[1]!, 'base64'));
      expect(fp).toMatch(/^SHA256:/);
      expect(ok.stderr).toContain(`web1: added the host key of root@127.0.0.1:${target.port} to ${kh}: ssh-ed25519 ${fp}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a wrong key is an authentication failure (exit 2), not a crash', async () => {
    const dir = project('');
    const other = join(dir, 'other_key');
    writeFileSync(other, newEd25519PrivateKey('not-authorized'), { mode: 0o600 });
    writeFileSync(join(dir, 'inventories', 'itest.yaml'), inv(target).replace(target.keyFile, other));
    try {
      const r = await runKeel(['provision', 'itest', '--check'], { root: dir });
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/authenticat/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failing command shows its exit code and last stderr lines (exit 2)', async () => {
    const dir = project(inv(target, '', '', '[broken]'), {
      broken: `resources:\n  - command: {run: "echo first-line >&2; echo 'the real reason' >&2; exit 42", unless: "false"}\n`,
    });
    try {
      const r = await runKeel(['provision', 'itest'], { root: dir });
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/exit code 42/);
      expect(r.stdout).toContain('the real reason');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a failing command's output is shown once, not in the live line and again in the summary", async () => {
    // The marker is printed by the command but is not in its text (the resource id shows that).
    const dir = project(inv(target, '', '', '[broken]'), {
      broken: `resources:\n  - command: {run: "printf 'keel-%s-marker\\\\n' once >&2; exit 3", unless: "false"}\n`,
    });
    try {
      const r = await runKeel(['provision', 'itest'], { root: dir });
      expect(r.code).toBe(2);
      expect(r.stdout.match(/keel-once-marker/g), r.stdout).toHaveLength(1);
      expect(r.stdout.match(/FAILED/g), r.stdout).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--diff on several hosts heads each host's diffs with its name", async () => {
    // The same target under two names: plan (check mode) takes no lock, so both run at once.
    const web2 = `  web2: {address: 127.0.0.1, port: ${target.port}, user: root, key: ${target.keyFile}, groups: [web]}`;
    const dir = project(inv(target, web2, '', '[named]'), {
      named: `resources:\n  - file: {path: /srv/keel-named.conf, content: "served by {{inventory_hostname}}\\n"}\n`,
    });
    try {
      const r = await runKeel(['plan', 'itest'], { root: dir });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const at = (text: string) => {
        expect(r.stdout.split(text), `${text} once in:\n${r.stdout}`).toHaveLength(2);
        return r.stdout.indexOf(text);
      };
      expect(at('===== web1 =====\n')).toBeLessThan(at('\n+served by web1\n'));
      expect(at('\n+served by web1\n')).toBeLessThan(at('===== web2 =====\n'));
      expect(at('===== web2 =====\n')).toBeLessThan(at('\n+served by web2\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a host without roles next to one with roles: a note, and the run goes on', async () => {
    // The same target under two names; in check mode, since a real run would take the
    // machine's run lock once per name.
    const bare = `  bare: {address: 127.0.0.1, port: ${target.port}, user: root, key: ${target.keyFile}}`;
    const dir = project(inv(target, bare, '', '[tiny]'), {
      tiny: `resources:\n  - file: {path: /srv/keel-tiny.conf, content: "tiny\\n"}\n`,
    });
    try {
      const r = await runKeel(['provision', 'itest', '--check'], { root: dir });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stderr).toBe('note: bare has no roles: nothing to apply on it\n');
      expect(r.stdout).toMatch(/^web1 {2}would change +tiny\/file:\/srv\/keel-tiny\.conf/m);
      expect(r.stdout).toMatch(/^2 host\(s\): 0 ok, 1 would change, 0 failed, 0 unreachable/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a template with a missing variable is refused before connecting (exit 1)', async () => {
    const dir = project(inv(target, '', '', '[tpl]'), {
      tpl: `resources:\n  - template: {src: t.conf.hbs, dest: /etc/keel-tpl.conf}\n`,
    });
    writeFileSync(join(dir, 'roles', 'tpl', 'templates', 't.conf.hbs'), 'a = 1\nb = {{missing_var}}\n');
    try {
      const r = await runKeel(['provision', 'itest'], { root: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/roles\/tpl\/templates\/t\.conf\.hbs:2:\d+: variable "missing_var" is not defined/);
      const f = await target.exec(['test', '-e', '/etc/keel-tpl.conf']);
      expect(f.code).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs as a non-root user through sudo without a password, and with one', async () => {
    const dir = project(inv(target, '', ', become: true', '[who]').replace('user: root', 'user: deploy'), {
      who: `resources:\n  - command: {run: "id -un > /root/keel-whoami", creates: /root/keel-whoami}\n`,
    });
    try {
      const r = await runKeel(['provision', 'itest', '--output', 'json'], { root: dir });
      expect(r.json().failed).toBe(0);
      expect(r.code).toBe(0);
      expect((await target.exec(['cat', '/root/keel-whoami'])).stdout.trim()).toBe('root');

      writeFileSync(join(dir, 'inventories', 'itest.yaml'), inv(target, '', ', become: true', '[who]').replace('user: root', 'user: deployp'));
      const wrong = await runKeel(['provision', 'itest', '-e', 'become_password=not-the-password'], { root: dir });
      expect(wrong.code).toBe(2);
      expect(wrong.stdout).toMatch(/sudo/i);
      expect(wrong.stdout).not.toContain('not-the-password');
      const right = await runKeel(['provision', 'itest', '-e', 'become_password=keel-test-sudo'], { root: dir });
      expect(right.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a connection dropped mid-run leaves files old or new, and the next run converges', async () => {
    const dir = project(inv(target, '', '', '[slow]'), {
      slow: `
variables:
  slow_version: {type: string, pattern: '^v[0-9]+$', default: v1}
resources:
  - file: {path: /srv/slow-a.conf, content: "a {{slow_version}}\\n"}
  - command: {run: "sleep 3", unless: "grep -q {{slow_version}} /srv/slow-b.conf"}
  - file: {path: /srv/slow-b.conf, content: "b {{slow_version}}\\n"}
`,
    });
    try {
      const first = await runKeel(['provision', 'itest'], { root: dir });
      expect(first.code, first.stdout + first.stderr).toBe(0);
      // During the sleep, kill every sshd session process: the connection drops.
      const run = runKeel(['provision', 'itest', '-e', 'slow_version=v2', '--output', 'json'], { root: dir });
      // Once the command's `sleep 3` runs (not after a guessed delay: a busy machine may not be there yet).
      await until('the slow command runs on the target', async () => (await target.exec(['pgrep', '-x', 'sleep'])).code === 0, { ms: 60_000, every: 100 });
      await target.exec(['sh', '-c', "pkill -KILL -f 'sshd: root' || true"]);
      const dropped = await run;
      expect(dropped.code).toBe(2);
      for (const f of ['/srv/slow-a.conf', '/srv/slow-b.conf']) {
        const c = (await target.exec(['cat', f])).stdout;
        expect(['a v1\n', 'a v2\n', 'b v1\n', 'b v2\n']).toContain(c);
      }
      // The dropped run's shell finishes its script on its own: its lock is live until then,
      // then stale (the run is gone). The next run refuses to start and says how to clear it;
      // `keel lock release` does.
      const busy = await runKeel(['provision', 'itest', '-e', 'slow_version=v2'], { root: dir });
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(/web1 is locked by (a run that is gone \(stale lock\): )?root@/);
      for (let i = 0; i < 100 && !/stale/.test((await runKeel(['lock', 'status', 'itest'], { root: dir })).stdout); i++) {
        await new Promise((r) => setTimeout(r, 200));
      }
      const refused = await runKeel(['provision', 'itest', '-e', 'slow_version=v2'], { root: dir });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/web1 is locked by a run that is gone \(stale lock\): .*`keel provision itest \(1 -e\)`/);
      expect(refused.stderr).toContain('keel lock release');
      const status = await runKeel(['lock', 'status', 'itest'], { root: dir });
      expect(status.stdout).toMatch(/^web1 {2}stale {2}/m);
      expect((await runKeel(['lock', 'release', 'itest'], { root: dir })).stdout).toMatch(/^web1 {2}released \(was stale\)/m);
      const next = await runKeel(['provision', 'itest', '-e', 'slow_version=v2', '--output', 'json'], { root: dir });
      expect(next.code, next.stderr).toBe(0);
      const again = await runKeel(['provision', 'itest', '-e', 'slow_version=v2', '--output', 'json'], { root: dir });
      expect(again.json().changed).toBe(0);
      expect((await target.exec(['cat', '/srv/slow-b.conf'])).stdout).toBe('b v2\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
