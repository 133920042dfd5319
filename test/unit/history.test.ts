// The deploy history's shell (src/deploy/history.ts) in this machine's real sh: one JSON line
// per entry whatever the values hold, only where the run holds the lock, kept bounded, read
// back; and lines of one run on several hosts merged (src/ops/history.ts).
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  HISTORY_KEEP,
  HistoryNote,
  appendSnippet,
  historyEntry,
  historyScript,
  parseHistory,
  readSnippet,
  type HistoryEntry,
} from '../../src/deploy/history.js';
import { newLockOwner } from '../../src/engine/lock.js';
import { PRELUDE, wrap } from '../../src/engine/script-parts.js';
import { describeMoves, mergeRuns } from '../../src/ops/history.js';
import { LocalSession } from '../helpers/local-session.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function host() {
  const state = mkdtempSync(join(tmpdir(), 'keel-history-'));
  dirs.push(state);
  return { state, session: new LocalSession('web1', { KEEL_STATE_DIR: state }) };
}

const NASTY = 'it\'s "quoted" $(touch /tmp/keel-pwned) `id`\nsecond line é 🚀 \\ ';
const mask = (s: string) => s.replaceAll('hunter2', '******');

describe('deploy history on a host', () => {
  it('appends one JSON line per entry, values exactly as given (first line of detail, secrets masked), and reads them back', async () => {
    const { state, session } = host();
    const owner = newLockOwner('deploy staging --branch x');
    const e = historyEntry(owner, 'deploy', { app: 'sample', from: 'r1', to: 'r2', result: 'ok', detail: `${NASTY} hunter2` }, mask);
    expect(e.detail).toBe(`it's "quoted" $(touch /tmp/keel-pwned) \`id\``);
    expect(e.who).toBe(`${owner.user}@${owner.controller}`);
    await session.runScript(wrap(PRELUDE + appendSnippet(e)));
    await session.runScript(wrap(PRELUDE + appendSnippet({ ...e, from: 'r2', to: 'r3', detail: 'x hunter2' })));
    const lines = readFileSync(join(state, 'history.jsonl'), 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[0]!)).toEqual(e);
    const r = await session.runScript(wrap(PRELUDE + readSnippet('@@n', 5)));
    expect(parseHistory(r.stdout, '@@n').map((x) => x.to)).toEqual(['r2', 'r3']);
  });

  it('a run appends only where it holds the lock', async () => {
    const { state, session } = host();
    const owner = newLockOwner('rollback staging');
    const e = historyEntry(owner, 'rollback', { app: 'a', from: 'r2', to: 'r1', result: 'ok' }, mask);
    await session.runScript(historyScript(e, owner.run_id));
    mkdirSync(join(state, 'lock'));
    writeFileSync(join(state, 'lock', 'owner'), 'run_id=someone-else\n');
    await session.runScript(historyScript(e, owner.run_id));
    expect(() => readFileSync(join(state, 'history.jsonl'))).toThrow();
    writeFileSync(join(state, 'lock', 'owner'), `run_id=${owner.run_id}\n`);
    await session.runScript(historyScript(e, owner.run_id));
    expect(readFileSync(join(state, 'history.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
  });

  it(`keeps the newest ${HISTORY_KEEP} lines once the file reaches twice that`, async () => {
    const { state, session } = host();
    const e = historyEntry(newLockOwner('x'), 'deploy', { app: 'a', from: '', to: 'r', result: 'ok' }, mask);
    writeFileSync(join(state, 'history.jsonl'), Array.from({ length: HISTORY_KEEP * 2 }, (_, i) => JSON.stringify({ ...e, to: `old${i}` })).join('\n') + '\n');
    await session.runScript(wrap(PRELUDE + appendSnippet({ ...e, to: 'newest' })));
    const lines = readFileSync(join(state, 'history.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(HISTORY_KEEP);
    expect(JSON.parse(lines.at(-1)!).to).toBe('newest');
  });

  it('a HistoryNote never ended says the run stopped before changing anything', () => {
    const owner = newLockOwner('maintenance on staging');
    const note = new HistoryNote(owner, 'maintenance on', [{ name: 'web1', appName: 'sample' }], mask);
    const line = /printf '%s\\n' '(.*)' >>/.exec(note.script('web1'))![1]!;
    expect(JSON.parse(line)).toMatchObject({
      what: 'maintenance on',
      app: 'sample',
      result: 'failed',
      detail: 'stopped before changing anything (see its output)',
    });
    note.ended({ from: () => '', to: () => 'on', ok: true, detail: '' });
    expect(note.script('web1')).toContain('"result":"ok"');
  });

  it('skips lines that are not entries (cut by a full disk)', () => {
    expect(parseHistory('@@n H {"time":"t","what":"deploy"}\n@@n H {"time":\n@@n H 42\nnoise\n', '@@n')).toHaveLength(1);
  });
});

describe('mergeRuns', () => {
  const base = (over: Partial<HistoryEntry>): HistoryEntry => ({
    time: '2026-12-01T10:00:00.000Z',
    started: '2026-12-01T09:59:50.000Z',
    run: 'r1',
    who: 'alice@laptop',
    what: 'deploy',
    command: 'deploy staging --branch main',
    app: 'sample',
    from: 'a',
    to: 'b',
    result: 'ok',
    durationMs: 10_000,
    detail: '',
    ...over,
  });

  it('makes one entry per run across hosts, oldest first, failed if any host failed', () => {
    const runs = mergeRuns([
      { host: 'web1', entries: [base({}), base({ run: 'r2', what: 'rollback', time: '2026-12-01T11:00:00.000Z', from: 'b', to: 'a' })] },
      { host: 'worker1', entries: [base({ result: 'rolled back', to: 'a', durationMs: 12_000 })] },
    ]);
    expect(runs.map((r) => [r.run, r.result, r.durationMs, r.hosts.map((h) => h.host)])).toEqual([
      ['r1', 'rolled back', 12_000, ['web1', 'worker1']],
      ['r2', 'ok', 10_000, ['web1']],
    ]);
    expect(describeMoves(runs[0]!)).toBe('web1: a -> b; worker1: a -> a');
    expect(describeMoves(mergeRuns([{ host: 'web1', entries: [base({ what: 'maintenance on', from: '', to: 'on' })] }])[0]!)).toBe('web1: on');
  });
});
