// Faults an operator meets, on a real target: two runs at once, Ctrl-C in the middle of an
// apply, a closed pipe, a wrong sudo password on a host with pam_faillock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { shExec, startTarget, type TestTarget } from '../helpers/target.js';
import { exited, runKeel, spawnKeel } from '../helpers/cli.js';
import { tempProject, writeInventory, writeRole } from '../helpers/project.js';
import { until } from '../helpers/wait.js';

let target: TestTarget;
const dirs: string[] = [];

function project(roleYaml: string, login = 'user: root'): string {
  const dir = tempProject('rel');
  dirs.push(dir);
  writeRole(dir, 'r', roleYaml);
  writeInventory(dir, target, { roles: ['r'], login });
  return dir;
}

/** stdout, whatever the exit code (the tests poll for files that may not be there yet). */
const sh = async (cmd: string) => (await shExec(target, cmd)).stdout;
/** Signals are sent the moment a step starts: look often. */
const often = { every: 100 };

beforeAll(async () => {
  target = await startTarget({ users: true });
});
afterAll(async () => {
  await target?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const SLOW = `
variables:
  r_value: {type: string, pattern: '^[a-z0-9]+$', default: first}
  r_tag: {type: string, pattern: '^[a-z0-9]+$', default: a}
resources:
  - file: {path: "/srv/value-{{r_tag}}", content: "{{r_value}}\\n"}
  - command: {run: "sleep 3; echo {{r_value}} >> /srv/slow-{{r_tag}}.log", unless: "grep -qx {{r_value}} /srv/slow-{{r_tag}}.log"}
`;

describe('reliability on a real target', () => {
  it('a second run while one is applying fails at once, names the holder and changes nothing', async () => {
    const dir = project(SLOW);
    const first = runKeel(['provision', 'itest', '-e', 'r_value=one', '-e', 'r_tag=c'], { root: dir });
    await until('the first run holds the lock', async () => (await sh('ls /var/lib/keel/lock 2>/dev/null')).includes('owner'), often);
    const started = Date.now();
    const second = await runKeel(['provision', 'itest', '-e', 'r_value=two', '-e', 'r_tag=c'], { root: dir });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/error: web1 is locked by root@\S+ \(pid \d+\), `keel provision itest \(2 -e\)`, since \d{4}-/);
    expect(second.stderr).toContain('nothing was changed on any host');
    const a = await first;
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(await sh('cat /srv/value-c /srv/slow-c.log')).toBe('one\none\n');
    expect(await sh('test -e /var/lib/keel/lock && echo held || echo free')).toBe('free\n');
  });

  it('Ctrl-C mid-apply: says what each host was doing, logs it, and the lock is released once the host finishes', async () => {
    const dir = project(SLOW);
    const child = await spawnKeel(['provision', 'itest', '-e', 'r_tag=i'], { root: dir });
    const done = exited(child);
    await until('the slow command runs', async () => (await sh('pgrep -x sleep || true')).trim() !== '', often);
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/SIGINT: stopping/);
    expect(r.stderr).toMatch(/web1 was in apply and will finish it on its own; run again to see the result\. Its lock is released when it finishes\./);
    // The host finishes the command it was running, then releases the lock itself.
    await until('the slow command finishes', async () => (await sh('cat /srv/slow-i.log 2>/dev/null')) === 'first\n', often);
    await until('the lock is released', async () => (await sh('test -e /var/lib/keel/lock && echo held || echo free')) === 'free\n', often);
    const logs = readdirSync(join(dir, '.keel', 'logs'));
    const log = readFileSync(join(dir, '.keel', 'logs', logs[0]!), 'utf8');
    expect(log).toMatch(/"event":"interrupted","signal":"SIGINT"/);
    const next = await runKeel(['provision', 'itest', '-e', 'r_tag=i', '--output', 'json'], { root: dir });
    expect(next.json().changed).toBe(0);
  });

  it('SIGTERM before anything changed: exit 143, lock released now', async () => {
    const dir = project(`resources:\n  - command: {run: "true", unless: "sleep 3"}\n`);
    const child = await spawnKeel(['provision', 'itest'], { root: dir });
    const done = exited(child);
    await until('the probe runs the guard', async () => (await sh('pgrep -x sleep || true')).trim() !== '', often);
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(143);
    expect(r.stderr).toMatch(/web1: stopped between steps \(probe\); nothing more was changed\./);
    await until('the lock is released', async () => (await sh('test -e /var/lib/keel/lock && echo held || echo free')) === 'free\n', often);
  });

  it('a template into a directory that does not exist says which one and what to add', async () => {
    const dir = project(`resources:\n  - template: {src: app.conf.hbs, dest: /srv/keel-nodir/app.conf}\n`);
    mkdirSync(join(dir, 'roles', 'r', 'templates'));
    writeFileSync(join(dir, 'roles', 'r', 'templates', 'app.conf.hbs'), 'x = 1\n');
    const r = await runKeel(['provision', 'itest'], { root: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/web1 {2}FAILED +r\/template:\/srv\/keel-nodir\/app\.conf/);
    expect(r.stdout).toContain('    | keel: /srv/keel-nodir does not exist: add a directory resource for it before this file\n');
    expect(r.stdout).not.toContain('mktemp');
    // The fix it names works.
    writeFileSync(
      join(dir, 'roles', 'r', 'role.yaml'),
      `resources:\n  - directory: {path: /srv/keel-nodir}\n  - template: {src: app.conf.hbs, dest: /srv/keel-nodir/app.conf}\n`,
    );
    const fixed = await runKeel(['provision', 'itest'], { root: dir });
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    expect(await sh('cat /srv/keel-nodir/app.conf')).toBe('x = 1\n');
  });

  it('a closed stdout (| head) does not crash the run or change its exit code', async () => {
    const dir = project(`resources:\n  - file: {path: /srv/pipe, content: "x"}\n`);
    const child = await spawnKeel(['provision', 'itest', '-v'], { root: dir });
    const done = exited(child);
    child.stdout.once('data', () => child.stdout.destroy());
    const r = await done;
    expect(r.stderr).not.toMatch(/EPIPE|Error:/);
    expect(r.code).toBe(0);
    expect(await sh('cat /srv/pipe')).toBe('x');
  });

  it('a wrong sudo password costs exactly one attempt (pam_faillock, the journal), and says so', async () => {
    // pam_faillock as hardened hosts have it (deny=3 locks the account after three failures),
    // around pam_unix in common-auth, as pam_faillock(8) shows.
    await sh(
      "sed -i 's/^\\(auth\\s*\\[success=1 default=ignore\\]\\s*pam_unix.so.*\\)$/" +
        'auth required pam_faillock.so preauth deny=3\\n\\1\\n' +
        'auth [default=die] pam_faillock.so authfail deny=3\\nauth sufficient pam_faillock.so authsucc deny=3/' +
        "' /etc/pam.d/common-auth && grep -c pam_faillock /etc/pam.d/common-auth && faillock --user deployp --reset",
    );
    const dir = project(`resources:\n  - file: {path: /srv/sudo, content: "x"}\n`, 'user: root, become: true');
    writeFileSync(join(dir, 'inventories', 'itest.yaml'), readFileSync(join(dir, 'inventories', 'itest.yaml'), 'utf8').replace('user: root', 'user: deployp'));
    const wrong = await runKeel(['provision', 'itest', '-e', 'become_password=not-it'], { root: dir });
    expect(wrong.code).toBe(2);
    expect(wrong.stdout + wrong.stderr).toMatch(/sudo rejected the password for deployp on web1 \(one attempt was made\)/);
    expect(wrong.stdout + wrong.stderr).toMatch(/pam_faillock/);
    // pam and the journal record the attempt on their own time: wait (bounded) for the journal's line.
    await until('the journal records the failed sudo', async () =>
      /authentication failure/.test(await sh('journalctl -q --no-pager _COMM=sudo | grep deployp || true')),
    );
    const failures = await sh('faillock --user deployp | grep -c " sudo " || true');
    expect(failures.trim()).toBe('1');
    const journal = await sh('journalctl -q --no-pager _COMM=sudo | grep deployp || true');
    expect(journal.match(/pam_unix\(sudo:auth\): authentication failure/g)).toHaveLength(1);
    expect(journal).not.toMatch(/[23] incorrect password attempts/);
    const right = await runKeel(['provision', 'itest', '-e', 'become_password=keel-test-sudo'], { root: dir });
    expect(right.code, right.stdout + right.stderr).toBe(0);
  });
});

// Two runs started at the same instant can each take some hosts' locks (issue 26.9). The run
// that started first must win: it waits for the younger one to give its locks back. The other
// run is made certain here, not left to timing: a lock on web2 owned by a live process on the
// target (so keel sees a live holder), started after or before this run.
describe('two runs that each hold some of the hosts', () => {
  let t2: TestTarget;
  let root: string;
  beforeAll(async () => {
    t2 = await startTarget({ name: 'contended' });
    root = tempProject('contention');
    dirs.push(root);
    writeRole(root, 'r', 'resources:\n  - file: {path: /srv/contended, content: "x\\n"}\n');
    writeFileSync(
      join(root, 'inventories', 'itest.yaml'),
      `hosts:\n` +
        `  web1: {address: 127.0.0.1, port: ${target.port}, user: root, key: ${target.keyFile}, roles: [r]}\n` +
        `  web2: {address: 127.0.0.1, port: ${t2.port}, user: root, key: ${t2.keyFile}, roles: [r]}\n` +
        `known_hosts: ../known_hosts\n`,
    );
    writeFileSync(join(root, 'known_hosts'), readFileSync(target.knownHostsFile, 'utf8') + readFileSync(t2.knownHostsFile, 'utf8'));
  });
  afterAll(() => t2?.stop());

  /** A lock on web2 held by a live process there (`sleep`), owned by a run that started at `started`. */
  async function otherRunHoldsWeb2(started: string): Promise<() => Promise<void>> {
    await t2.exec(['sh', '-c', 'nohup sleep 600 >/dev/null 2>&1 & echo $! > /tmp/holder.pid']);
    const owner =
      'pid=$(cat /tmp/holder.pid); start=$(sed "s/.*) //" /proc/$pid/stat | cut -d" " -f20); mkdir -p /var/lib/keel/lock; ' +
      "printf 'run_id=otherrun\\ncommand=provision itest\\nuser=them\\ncontroller=elsewhere\\npid=1\\n" +
      `started=${started}\\nholder_pid=%s\\nholder_start=%s\\n' ` +
      '"$pid" "$start" > /var/lib/keel/lock/owner';
    expect((await t2.exec(['sh', '-c', owner])).code).toBe(0);
    return async () => {
      await t2.exec(['sh', '-c', 'rm -rf /var/lib/keel/lock; kill "$(cat /tmp/holder.pid)" 2>/dev/null || true']);
    };
  }
  const web1Lock = async () => (await target.exec(['test', '-e', '/var/lib/keel/lock'])).code === 0;

  it('the run that started first waits for the younger one to give its lock back, then takes it and applies', async () => {
    const giveBack = await otherRunHoldsWeb2('2099-01-01T00:00:00.000Z');
    const run = runKeel(['provision', 'itest', '--output', 'json'], { root });
    // The younger run gives up (as keel does when it meets an older run): its lock goes.
    await until('this run holds web1 (it took it, then found web2 held)', web1Lock, often);
    await giveBack();
    const r = await run;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await t2.exec(['cat', '/srv/contended'])).stdout).toBe('x\n');
  });

  it('the younger run gives its locks back at once and says who holds the others', async () => {
    const giveBack = await otherRunHoldsWeb2('2000-01-01T00:00:00.000Z');
    try {
      const r = await runKeel(['provision', 'itest'], { root });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/web2 is locked by them@elsewhere/);
      expect(await web1Lock()).toBe(false);
    } finally {
      await giveBack();
    }
  });
});
