// The run lock's shell on a real local sh: taken atomically, reported with its holder, stale
// when the holder's shell is gone, released only by the run that holds it.
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  acquireSnippet,
  assertHeldSnippet,
  breakSnippet,
  describeHolder,
  newLockOwner,
  parseLockReport,
  peekSnippet,
  releaseScript,
} from '../../src/engine/lock.js';
import { PRELUDE, newNonce, wrap } from '../../src/engine/script-parts.js';
import { LocalSession } from '../helpers/local-session.js';

let dir: string;
let session: LocalSession;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-lock-'));
  session = new LocalSession('local', { KEEL_STATE_DIR: join(dir, 'state') });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function run(snippet: (nonce: string) => string, after = 'echo body-ran') {
  const nonce = newNonce();
  const r = await session.runScript(wrap(PRELUDE + snippet(nonce) + after + '\n'));
  return { ...r, report: parseLockReport(r.stdout, nonce) };
}

describe('run lock', () => {
  it('is taken once; a second run sees the holder (stale once its shell is gone) and runs nothing', async () => {
    const a = newLockOwner('provision staging', { branch: "it's/$(x)" });
    const first = await run((n) => acquireSnippet(n, a));
    expect(first.report).toEqual({ kind: 'acquired' });
    expect(first.stdout).toContain('body-ran');
    const owner = readFileSync(join(dir, 'state', 'lock', 'owner'), 'utf8');
    expect(owner).toContain(`run_id=${a.run_id}\n`);
    expect(owner).toContain("branch=it's/$(x)\n");
    expect(owner).toMatch(/holder_pid=\d+\nholder_start=\d+\n/);

    const b = newLockOwner('provision staging');
    const second = await run((n) => acquireSnippet(n, b));
    expect(second.stdout).not.toContain('body-ran');
    expect(second.report).toMatchObject({ kind: 'held', holder: { state: 'stale', owner: { run_id: a.run_id, branch: "it's/$(x)" } } });
    expect(describeHolder((second.report as any).holder)).toContain('`keel provision staging`');

    // Another run cannot release it; the holder can.
    await session.runScript(releaseScript(b.run_id));
    expect(existsSync(join(dir, 'state', 'lock'))).toBe(true);
    await session.runScript(releaseScript(a.run_id));
    expect(existsSync(join(dir, 'state', 'lock'))).toBe(false);
    expect((await run((n) => peekSnippet(n))).report).toEqual({ kind: 'free' });
  });

  it('is live while its holder shell runs, and only --force breaks a live lock', async () => {
    const a = newLockOwner('deploy staging');
    // A long-lived shell takes the lock, as the run's remote shell does, and stays.
    const holder = spawn('/bin/sh', ['-s'], { env: { ...process.env, KEEL_STATE_DIR: join(dir, 'state') }, stdio: ['pipe', 'pipe', 'inherit'] });
    const nonce = newNonce();
    holder.stdin.write(PRELUDE + acquireSnippet(nonce, a).replace('  exit 0\n', '') + '\n');
    await new Promise<void>((resolve) => holder.stdout.on('data', (d) => String(d).includes('L acquired') && resolve()));
    try {
      const peek = await run((n) => peekSnippet(n));
      expect(peek.report).toMatchObject({ kind: 'held', holder: { state: 'live' } });
      const gentle = await run((n) => breakSnippet(n, false));
      expect(gentle.report).toMatchObject({ kind: 'held', removed: false });
      const check = await session.runScript(wrap(PRELUDE + assertHeldSnippet(a.run_id) + 'echo still-mine\n'));
      expect(check.stdout).toBe('still-mine\n');
      const forced = await run((n) => breakSnippet(n, true));
      expect(forced.report).toMatchObject({ kind: 'held', removed: true });
      const lost = await session.runScript(wrap(PRELUDE + assertHeldSnippet(a.run_id) + 'echo changed-anyway\n'));
      expect(lost.code).toBe(96);
      expect(lost.stdout).toBe('');
      expect(lost.stderr).toMatch(/no longer holds the lock/);
    } finally {
      holder.kill();
    }
  });
});
