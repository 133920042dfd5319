// .keel/logs/ keeps the newest runs' logs (src/report/log.ts): a run removes the oldest beyond
// KEEL_KEEP_LOGS (default 200), and never a file keel did not name as a log.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { KEEP_LOGS, RunLog, keepLogs, pruneLogs } from '../../src/report/log.js';
import { Redactor } from '../../src/report/redact.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  delete process.env.KEEL_KEEP_LOGS;
});

/** A project whose .keel/logs/ holds `n` logs of earlier runs (one a day in 2026), and two
 *  files that are not keel's logs. */
function project(n: number): { root: string; logs: string } {
  const root = mkdtempSync(join(tmpdir(), 'keel-logs-'));
  roots.push(root);
  const logs = join(root, '.keel', 'logs');
  mkdirSync(logs, { recursive: true });
  for (let i = 0; i < n; i++) {
    const stamp = new Date(Date.UTC(2026, 0, 1 + i, 10, 0, 0)).toISOString().replace(/[:.]/g, '-');
    writeFileSync(join(logs, `${stamp}-provision-staging.jsonl`), '{}\n');
  }
  writeFileSync(join(logs, 'notes.txt'), 'mine\n');
  writeFileSync(join(logs, 'old-run.jsonl'), 'not named by keel\n');
  return { root, logs };
}

const keelLogs = (dir: string) =>
  readdirSync(dir)
    .filter((n) => /^\d{4}-/.test(n))
    .sort();

describe('run log retention', () => {
  it('a run keeps the newest KEEL_KEEP_LOGS logs, its own included, and nothing else is touched', () => {
    const { root, logs } = project(6);
    const before = keelLogs(logs);
    process.env.KEEL_KEEP_LOGS = '3';
    const log = new RunLog(root, 'provision', 'staging', new Redactor());
    log.close();
    const after = keelLogs(logs);
    expect(after).toHaveLength(3);
    expect(after).toContain(log.file.split('/').pop());
    expect(after.slice(0, 2)).toEqual(before.slice(-2)); // the two newest earlier runs
    expect(existsSync(join(logs, 'notes.txt'))).toBe(true);
    expect(existsSync(join(logs, 'old-run.jsonl'))).toBe(true);
  });

  it('keeps every log with 0, and at most the default without the variable', () => {
    const { logs } = project(5);
    pruneLogs(logs, 0);
    expect(keelLogs(logs)).toHaveLength(5);
    pruneLogs(logs, 2);
    expect(keelLogs(logs)).toHaveLength(2);
    expect(keepLogs({})).toBe(KEEP_LOGS);
    expect(keepLogs({ KEEL_KEEP_LOGS: '' })).toBe(KEEP_LOGS);
    expect(keepLogs({ KEEL_KEEP_LOGS: '0' })).toBe(0);
  });

  it('a value that is not a whole number is an error that names the variable, and no log is removed', () => {
    const { root, logs } = project(4);
    expect(() => keepLogs({ KEEL_KEEP_LOGS: '-1' })).toThrow(ConfigError);
    process.env.KEEL_KEEP_LOGS = 'ten';
    expect(() => new RunLog(root, 'provision', 'staging', new Redactor())).toThrow(/KEEL_KEEP_LOGS="ten" is not a whole number/);
    expect(keelLogs(logs)).toHaveLength(4);
  });
});
