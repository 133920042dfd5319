// Steps followed as they run, on this machine's real /bin/sh: each step's begin, output lines
// and end reach the controller while the script still runs (engine/steps.ts), and provision
// shows each resource running, then its result, as it happens (host-apply.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileHost } from '../../src/engine/compile.js';
import { runHost } from '../../src/engine/host-run.js';
import type { ResourceResult, StepActivity } from '../../src/engine/results.js';
import { RoleLibrary } from '../../src/engine/roles.js';
import { runSteps, type Step, type StepEvent } from '../../src/engine/steps.js';
import { raw } from '../../src/shell/quote.js';
import { LocalSession, localConnection } from '../helpers/local-session.js';

let dir: string;
let state: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-live-'));
  state = join(dir, 'state');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const session = () => new LocalSession('local', { KEEL_STATE_DIR: state });

/** Shell that waits (at most 20 s) until the test creates `file` (a shell word). */
const waitFor = (file: string) => `i=0; while [ ! -e ${file} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done`;

describe('runSteps, followed', () => {
  const steps = (go: string): Step[] => [
    { key: 'one', commands: [raw(`echo first; echo 's3cret on stderr' >&2; ${waitFor(`'${go}'`)}; printf 'no newline'`)] },
    { key: 'two', commands: [raw('echo second; exit 4')] },
    { key: 'three', commands: [raw('echo never')] },
  ];

  it("streams a step's lines while it runs, masked, and ends with the same outcomes as without", async () => {
    const go = join(dir, 'go');
    const events: StepEvent[] = [];
    let ended = false;
    const run = runSteps(session(), steps(go), {
      captureAll: true,
      timed: true,
      streamOutput: true,
      mask: (s) => s.replaceAll('s3cret', '******'),
      onStepEvent: (e) => {
        events.push(e);
        // The step is still running when its first lines arrive: it waits for this file.
        if (e.type === 'output' && e.line === '****** on stderr') writeFileSync(go, '');
      },
    }).finally(() => (ended = true));
    await run;
    expect(ended).toBe(true);
    expect(
      events.map((e) => (e.type === 'end' ? `end ${e.step.key} ${e.step.status}` : e.type === 'begin' ? `begin ${e.key}` : `${e.key}| ${e.line}`)),
    ).toEqual(['begin one', 'one| first', 'one| ****** on stderr', 'one| no newline', 'end one changed', 'begin two', 'two| second', 'end two failed']);
    const end = events.find((e) => e.type === 'end' && e.step.key === 'two') as Extract<StepEvent, { type: 'end' }>;
    expect(end.step).toMatchObject({ code: 4, output: 'second\n' });

    // The same steps without streaming: the same outcomes (times aside).
    rmSync(go);
    writeFileSync(go, '');
    const streamed = await runSteps(session(), steps(go), { captureAll: true, streamOutput: true, mask: (s) => s.replaceAll('s3cret', '******') });
    const plain = await runSteps(session(), steps(go), { captureAll: true, mask: (s) => s.replaceAll('s3cret', '******') });
    expect(streamed).toEqual(plain);
    expect(plain.steps[0]).toEqual({ key: 'one', status: 'changed', output: 'first\n****** on stderr\nno newline' });
    expect(plain.notRun).toEqual(['three']);
  });

  it('a step that leaves a process holding its output open still ends when its shell does', async () => {
    const go = join(dir, 'go');
    const events: string[] = [];
    const r = await runSteps(session(), [{ key: 'daemon', commands: [raw(`(${waitFor(`'${go}'`)}; echo late) &`), raw('echo started')] }], {
      captureAll: true,
      streamOutput: true,
      onStepEvent: (e) => events.push(e.type),
    });
    expect(existsSync(go)).toBe(false);
    expect(r.steps).toEqual([{ key: 'daemon', status: 'changed', output: 'started\n' }]);
    expect(events).toEqual(['begin', 'output', 'end']);
    writeFileSync(go, '');
  });
});

describe('provision, followed', () => {
  function plan(roleYaml: string) {
    mkdirSync(join(dir, 'roles', 'r'), { recursive: true });
    writeFileSync(join(dir, 'roles', 'r', 'role.yaml'), roleYaml);
    const host = { name: 'local', groups: ['all'], roles: ['r'], vars: { base: dir }, location: { file: 'inv.yaml' }, connection: localConnection() };
    return compileHost(host, new RoleLibrary([join(dir, 'roles')]), { env: 'test', root: dir });
  }

  it("shows each resource running, then its result, while the host's script goes on; one apply round trip", async () => {
    const p = plan(`
resources:
  - file: {path: "{{base}}/fine", content: "x"}
  - command: {run: "touch {{quote base}}/c1", creates: "{{base}}/c1"}
    notify: done
  - command: {run: "${waitFor('{{quote base}}/go')}; touch {{quote base}}/c2", creates: "{{base}}/c2"}
  - command: {run: "touch {{quote base}}/c3", creates: "{{base}}/c3"}
handlers:
  done: {run: "echo handled"}
`);
    writeFileSync(join(dir, 'fine'), 'x');
    const seen: string[] = [];
    const s = session();
    const r = await runHost(p, s, {
      check: false,
      diff: false,
      onResult: (_h, res: ResourceResult) => {
        seen.push(`${res.status} ${res.id}`);
        // The first command's result arrives while the second still waits for this file.
        if (res.id.includes('touch') && res.id.endsWith('/c1')) {
          expect(existsSync(join(dir, 'c2'))).toBe(false);
          writeFileSync(join(dir, 'go'), '');
        }
      },
      onStep: (_h, st: StepActivity) => {
        if (st.state !== 'output') seen.push(`${st.state} ${st.id} ${st.done}/${st.total}`);
      },
    });
    expect(r.error).toBeUndefined();
    expect(r.changed).toBe(4);
    const ids = p.resources.map((x) => x.id);
    expect(seen).toEqual([
      `ok ${ids[0]}`,
      `running ${ids[1]} 1/4`,
      `changed ${ids[1]}`,
      `ended ${ids[1]} 2/4`,
      `running ${ids[2]} 2/4`,
      `changed ${ids[2]}`,
      `ended ${ids[2]} 3/4`,
      `running ${ids[3]} 3/4`,
      `changed ${ids[3]}`,
      `ended ${ids[3]} 4/4`,
      'running handler/r:done 4/4',
      'changed handler/r:done',
      'ended handler/r:done 4/4',
    ]);
    // Probe, then apply + verify: following the script costs no round trip.
    expect(s.roundTrips).toBe(2);
    expect(r.roundTrips).toBe(2);
  });

  it('a command shown changed when it ran, then failed when the verification finds its guard unmet', async () => {
    const p = plan(`
resources:
  - command: {run: "true", creates: "{{base}}/never"}
`);
    const seen: string[] = [];
    const r = await runHost(p, session(), { check: false, diff: false, onResult: (_h, res) => seen.push(`${res.status} ${res.reason}`) });
    expect(r.failed).toBe(1);
    expect(r.resources).toEqual([expect.objectContaining({ status: 'failed', reason: `ran, but ${join(dir, 'never')} still does not exist` })]);
    expect(seen).toEqual([expect.stringMatching(/^changed /), `failed ran, but ${join(dir, 'never')} still does not exist`]);
  });

  it('a failed step is shown once, live, with its output; the rest are not run', async () => {
    const p = plan(`
resources:
  - command: {run: "echo boom >&2; exit 5"}
  - file: {path: "{{base}}/after", content: "x"}
`);
    const seen: ResourceResult[] = [];
    const r = await runHost(p, session(), { check: false, diff: false, onResult: (_h, res) => seen.push(res) });
    expect(r.failed).toBe(1);
    expect(seen.map((x) => `${x.status} ${x.reason}`)).toEqual(['failed command failed with exit code 5', 'skipped not run: an earlier resource failed']);
    expect(seen[0]!.output).toBe('boom\n');
  });

  it("with streamOutput, each step's lines come with the id of the resource that wrote them", async () => {
    const p = plan(`
resources:
  - command: {run: "echo one; echo two", creates: "{{base}}/x"}
    notify: h
handlers:
  h: {run: "echo from the handler; touch {{quote base}}/x"}
`);
    const lines: string[] = [];
    const r = await runHost(p, session(), {
      check: false,
      diff: false,
      streamOutput: true,
      onStep: (_h, st) => {
        if (st.state === 'output') lines.push(`${st.id}| ${st.line}`);
      },
    });
    expect(r.resources.map((x) => x.status)).toEqual(['changed', 'changed']);
    expect(lines).toEqual([`${p.resources[0]!.id}| one`, `${p.resources[0]!.id}| two`, 'handler/r:h| from the handler']);
  });
});
