// Progress as it happens, on a real target, read the way a CI job reads it: keel's stdout is a
// pipe. Each resource's line must arrive when that resource ends, not when the host's whole
// apply script does. Arrival times are compared with the times the target's files were
// written (the container shares this machine's clock), so a busy machine only shrinks margins
// of seconds; nothing waits a fixed time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../../src/ssh/connect.js';
import { runSteps, type StepEvent } from '../../src/engine/steps.js';
import { raw } from '../../src/shell/quote.js';
import { sh, shExec, startTarget, type TestTarget } from '../helpers/target.js';
import { exited, spawnKeel } from '../helpers/cli.js';
import { setVaultPassword, tempProject, writeInventory, writeRole, writeSecrets } from '../helpers/project.js';
import { until } from '../helpers/wait.js';

let target: TestTarget;
const dirs: string[] = [];
let restoreVault: () => void;

beforeAll(async () => {
  target = await startTarget();
  restoreVault = setVaultPassword('progress-test-pass');
});
afterAll(async () => {
  restoreVault?.();
  await target?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A line of keel's stdout and when it arrived here. */
interface Arrival {
  at: number;
  line: string;
}

/** `keel provision itest ...args` as a child whose stdout is a pipe: every line with its
 *  arrival time, as it comes (`onLine` may act on it). */
async function provisionThroughPipe(root: string, args: string[] = [], onLine?: (a: Arrival) => void) {
  const child = await spawnKeel(['provision', 'itest', ...args], { root });
  const lines: Arrival[] = [];
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    const at = Date.now();
    rest += d;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const a = { at, line: rest.slice(0, nl) };
      rest = rest.slice(nl + 1);
      lines.push(a);
      onLine?.(a);
    }
  });
  const done = await exited(child);
  return { ...done, lines };
}

/** When the target last wrote `path` (ms since the epoch, its clock is this machine's). */
async function mtime(path: string): Promise<number> {
  return Math.round(Number(await sh(target, `stat -c %.3Y ${path}`)) * 1000);
}

function arrival(lines: Arrival[], pattern: RegExp): Arrival {
  const a = lines.find((l) => pattern.test(l.line));
  if (!a) throw new Error(`no line matches ${pattern}:\n${lines.map((l) => l.line).join('\n')}`);
  return a;
}

function project(roleYaml: string, vars?: Record<string, unknown>): string {
  const root = tempProject('progress');
  dirs.push(root);
  writeRole(root, 'slow', roleYaml);
  writeInventory(root, target, { roles: ['slow'], ...(vars && { vars }) });
  return root;
}

describe('progress through a pipe, on a real target', () => {
  it("each resource's line arrives as it ends, before the last one has finished; one apply round trip", async () => {
    const root = project(`
resources:
  - command: {run: "sleep 3; touch /srv/p1", creates: /srv/p1}
  - command: {run: "sleep 3; touch /srv/p2", creates: /srv/p2}
  - command: {run: "sleep 3; touch /srv/p3", creates: /srv/p3}
`);
    const r = await provisionThroughPipe(root);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const line = (n: number) => arrival(r.lines, new RegExp(`^web1  changed +slow/command:sleep 3; touch /srv/p${n}  `));
    const [t1, t2, t3] = [await mtime('/srv/p1'), await mtime('/srv/p2'), await mtime('/srv/p3')];
    console.log(
      `arrivals after p1 was written: ${[1, 2, 3].map((n) => `p${n} line +${line(n).at - t1} ms`).join(', ')}; ` +
        `p2 written +${t2 - t1} ms, p3 +${t3 - t1} ms; recap +${arrival(r.lines, /^RECAP/).at - t1} ms`,
    );
    // The first resource's line is here before the last resource has finished (6 s later on
    // the host), the second's before the third has.
    expect(line(1).at).toBeGreaterThanOrEqual(t1);
    expect(line(1).at).toBeLessThan(t3);
    expect(line(2).at).toBeLessThan(t3);
    expect(line(3).at).toBeGreaterThanOrEqual(t3);
    // Round trips as before: the probe, then one apply (the recap's column).
    expect(r.lines.map((l) => l.line)).toContainEqual(expect.stringMatching(/^web1 +0 +3 +0 +0 +0 +2 +[\d.]+s$/));
    // The run log has each result with the time it came.
    const log = readFileSync(join(root, '.keel', 'logs', readdirSync(join(root, '.keel', 'logs'))[0]!), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const logged = (n: number) => Date.parse(log.find((e) => e.event === 'resource' && e.id === `slow/command:sleep 3; touch /srv/p${n}`).time);
    expect(logged(1)).toBeLessThan(t3);
    expect(logged(3)).toBeGreaterThanOrEqual(t3 - 1); // ISO times have ms; mtime was rounded
    expect(log.filter((e) => e.event === 'step').map((e) => e.id)).toEqual([1, 2, 3].map((n) => `slow/command:sleep 3; touch /srv/p${n}`));
  });

  it('-v: the output lines of a step arrive as it writes them, secrets masked; a handler heredoc is one line', async () => {
    const root = project(
      `
variables:
  slow_token: {type: string}
resources:
  - command:
      run: "echo begin-of-step; sleep 3; echo end-of-step; touch /srv/pv; echo token={{quote slow_token}}"
      creates: /srv/pv
    notify: report
handlers:
  report:
    run: |
      cat <<'EOF'
      from the handler
      EOF
`,
      { slow_token: '{{secrets.token}}' },
    );
    await writeSecrets(root, 'progress-test-pass', { token: 'tok-9f3c1a77' });
    const r = await provisionThroughPipe(root, ['-v']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The step's first line is here before the step has finished (3 s later on the host).
    expect(arrival(r.lines, /^web1  \| begin-of-step$/).at).toBeLessThan(await mtime('/srv/pv'));
    expect(r.stdout).not.toContain('tok-9f3c1a77');
    // Every line about web1 but the recap's row.
    expect(r.lines.map((l) => l.line).filter((l) => /^web1  [^ \d]/.test(l))).toEqual([
      'web1  | begin-of-step',
      'web1  | end-of-step',
      'web1  | token=******',
      'web1  changed      slow/command:echo begin-of-step; sleep 3; echo end-of-step; touch /srv...  ' +
        'run: echo begin-of-step; sleep 3; echo end-of-step; touch /srv...',
      'web1  | from the handler',
      "web1  changed      handler/slow:report  ran: cat <<'EOF' ⏎ from the handler ⏎ EOF",
    ]);
  });

  it("deploy's steps over SSH: each output line as the step writes it, masked, the same outcome as without", async () => {
    const session = await connect({
      hostName: 'web1',
      connection: {
        address: '127.0.0.1',
        port: target.port,
        user: 'root',
        keyFiles: [target.keyFile],
        agent: false,
        jump: [],
        connectTimeoutMs: 10_000,
        become: false,
        becomeUser: 'root',
      },
      knownHostsFile: target.knownHostsFile,
      acceptNewHostKeys: false,
    });
    try {
      const waitGo = 'i=0; while [ ! -e /srv/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done';
      const steps = [
        { key: 'build', commands: [raw(`echo collecting; echo 'password=pw-51e0' >&2; ${waitGo}; echo built`)] },
        { key: 'daemon', commands: [raw('(sleep 30 &)'), raw('echo started')] },
      ];
      const events: StepEvent[] = [];
      const mask = (s: string) => s.replaceAll('pw-51e0', '******');
      const run = runSteps(session, steps, {
        captureAll: true,
        timed: true,
        streamOutput: true,
        mask,
        onStepEvent: (e) => events.push(e),
      });
      await until('the first lines of the running step', async () => events.filter((e) => e.type === 'output').length >= 2, { every: 50 });
      expect(events).toEqual([
        { type: 'begin', key: 'build' },
        { type: 'output', key: 'build', line: 'collecting' },
        { type: 'output', key: 'build', line: 'password=******' },
      ]);
      await sh(target, 'touch /srv/go');
      const streamed = await run;
      expect(events.slice(3).map((e) => (e.type === 'end' ? `end ${e.step.key}` : e.type === 'begin' ? `begin ${e.key}` : e.line))).toEqual([
        'built',
        'end build',
        'begin daemon',
        'started',
        'end daemon',
      ]);
      const plain = await runSteps(session, steps, { captureAll: true, mask });
      const untimed = (r: typeof plain) => r.steps.map(({ durationMs: _, ...s }) => s);
      expect(untimed(streamed)).toEqual(untimed(plain));
      expect(untimed(plain)).toEqual([
        { key: 'build', status: 'changed', output: 'collecting\npassword=******\nbuilt\n' },
        { key: 'daemon', status: 'changed', output: 'started\n' },
      ]);
    } finally {
      await shExec(target, 'rm -f /srv/go; pkill -x sleep || true');
      await session.close();
    }
  });

  it('a connection dropped mid-run: what ended is shown, then the host is reported unreachable as before', async () => {
    const root = project(`
resources:
  - command: {run: "touch /srv/d1", creates: /srv/d1}
  - command: {run: "sleep 5; touch /srv/d2", creates: /srv/d2}
`);
    let dropped: Promise<unknown> | undefined;
    const r = await provisionThroughPipe(root, [], (a) => {
      // The first resource's line is here while the second sleeps: drop the connection now.
      if (/^web1  changed +slow\/command:touch \/srv\/d1/.test(a.line)) dropped = shExec(target, "pkill -KILL -f 'sshd: root' || true");
    });
    await dropped;
    expect(r.code).toBe(2);
    const out = r.lines.map((l) => l.line);
    expect(out.filter((l) => /^web1  [^ \d]/.test(l))).toEqual([
      'web1  changed      slow/command:touch /srv/d1  run: touch /srv/d1',
      expect.stringMatching(/^web1  UNREACHABLE  .*connection lost while running a script on root@127\.0\.0\.1:\d+/),
    ]);
    expect(out).toContainEqual(expect.stringMatching(/^web1 +0 +0 +0 +1 +0 +\d+ +[\d.]+s$/));
  });
});
