// Steps followed as they run, on this machine's real /bin/sh: each step's begin, output lines
// and end reach the controller while the script still runs (engine/steps.ts), and provision
// shows each resource running, then its result, as it happens (host-apply.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSteps, type Step, type StepEvent } from '../../src/engine/steps.js';
import { raw } from '../../src/shell/quote.js';
import { LocalSession } from '../helpers/local-session.js';

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
