// keel deploy --wait-lock: the run waits for a lock held by a live run (saying whom for), takes
// it once it is released, gives up after its bound, and never waits for a stale lock. Driven
// through Phases.lockAndRead on this machine's sh (LocalSession), with a real holder shell.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Phases } from '../../src/deploy/phases.js';
import type { HostDeploy } from '../../src/deploy/config.js';
import type { HostPlan } from '../../src/engine/plan.js';
import { acquireSnippet, newLockOwner, releaseScript } from '../../src/engine/lock.js';
import { PRELUDE, newNonce } from '../../src/engine/script-parts.js';
import { LockedError } from '../../src/errors.js';
import { duration } from '../../src/cli/options.js';
import { formatDuration } from '../../src/deploy/wait.js';
import { LocalSession, localConnection } from '../helpers/local-session.js';

let dir: string;
let state: string;
const holders: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-lock-wait-'));
  state = join(dir, 'state');
});
afterEach(() => {
  for (const h of holders.splice(0)) h.kill();
  rmSync(dir, { recursive: true, force: true });
});

function host(name: string): HostDeploy {
  const plan = {
    host: { name, groups: [], roles: ['deploy'], vars: {}, location: { file: 'inv.yaml' }, connection: localConnection() },
  } as unknown as HostPlan;
  return { plan, name, appRoot: join(dir, name), appctl: '' } as HostDeploy;
}

function phases(owner = newLockOwner('deploy staging --branch main', { branch: 'main', release: 'r2' })) {
  return new Phases({
    hosts: [host('web1')],
    connect: async () => new LocalSession('web1', { KEEL_STATE_DIR: state }),
    owner,
    mask: (s) => s,
  });
}

/** A shell that takes the lock and stays, as a run's remote shell does. */
async function liveHolder(): Promise<{ owner: ReturnType<typeof newLockOwner>; release: () => Promise<void> }> {
  const owner = newLockOwner('deploy staging --branch main', { branch: 'main', release: 'r1' });
  const sh = spawn('/bin/sh', ['-s'], { env: { ...process.env, KEEL_STATE_DIR: state }, stdio: ['pipe', 'pipe', 'inherit'] });
  holders.push(sh);
  const nonce = newNonce();
  sh.stdin.write(PRELUDE + acquireSnippet(nonce, owner).replace('  exit 0\n', '') + '\n');
  await new Promise<void>((resolve) => sh.stdout.on('data', (d) => String(d).includes('L acquired') && resolve()));
  return { owner, release: async () => void (await new LocalSession('x', { KEEL_STATE_DIR: state }).runScript(releaseScript(owner.run_id))) };
}

describe('--wait-lock', () => {
  it('waits for a live holder, says whom for, and takes the lock once it is released', async () => {
    const holder = await liveHolder();
    const p = phases();
    const lines: string[] = [];
    let released = false;
    const waiting = p.lockAndRead('deployed', {
      ms: 20_000,
      onWait: (l) => {
        lines.push(l);
        // The holder finishes once the waiter has said it waits.
        if (!released) {
          released = true;
          void holder.release();
        }
      },
    });
    await waiting;
    await p.pool.close(() => undefined);
    expect(lines[0]).toMatch(
      /^waiting for \S+@\S+ \(pid \d+\), `keel deploy staging --branch main` \(branch main, release r1\), since \S+: web1 is locked \(giving up in (19|20)s\)$/,
    );
    expect(readFileSync(join(state, 'lock', 'owner'), 'utf8')).toContain('release=r2');
  });

  it('gives up after the bound, naming the holder and the wait', async () => {
    await liveHolder();
    const p = phases();
    const started = Date.now();
    const lines: string[] = [];
    const err = await p.lockAndRead('deployed', { ms: 2500, onWait: (l) => lines.push(l) }).catch((e: unknown) => e);
    await p.pool.close(() => undefined);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as Error).message).toMatch(/^web1 is locked by .*release r1.*; gave up after waiting 3s \(--wait-lock\)\nnothing was deployed/);
    expect((err as LockedError).hint).toMatch(/a longer --wait-lock/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(lines).toHaveLength(1);
  });

  it('an interrupt ends the wait at once', async () => {
    await liveHolder();
    const p = phases();
    const ac = new AbortController();
    const started = Date.now();
    const err = await p.lockAndRead('deployed', { ms: 60_000, signal: ac.signal, onWait: () => ac.abort('SIGINT') }).catch((e: unknown) => e);
    await p.pool.close(() => undefined);
    expect(err).toBeInstanceOf(LockedError);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('does not wait for a stale lock (its run is gone), and says so', async () => {
    const p = phases();
    mkdirSync(join(state, 'lock'), { recursive: true });
    writeFileSync(join(state, 'lock', 'owner'), 'run_id=dead\ncommand=deploy staging\nuser=ci\ncontroller=runner\npid=1\nholder_pid=999999\nholder_start=1\n');
    const started = Date.now();
    const err = await p.lockAndRead('deployed', { ms: 60_000, onWait: () => expect.fail('waited for a stale lock') }).catch((e: unknown) => e);
    await p.pool.close(() => undefined);
    expect((err as Error).message).toMatch(/web1 is locked by a run that is gone \(stale lock\): .*--wait-lock does not wait for it/);
    expect((err as LockedError).hint).toMatch(/keel lock release/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('without --wait-lock fails at once and suggests it', async () => {
    await liveHolder();
    const p = phases();
    const err = await p.lockAndRead('deployed').catch((e: unknown) => e);
    await p.pool.close(() => undefined);
    expect((err as Error).message).toMatch(/^web1 is locked by .*release r1/);
    expect((err as LockedError).hint).toMatch(/--wait-lock 10m/);
    expect(existsSync(join(state, 'lock'))).toBe(true);
  });

  it('a lock whose owner is being written is looked at again before it is called stale', async () => {
    mkdirSync(join(state, 'lock'), { recursive: true });
    const p = phases();
    // The other run writes its owner file (and releases) a moment later.
    setTimeout(() => rmSync(join(state, 'lock'), { recursive: true, force: true }), 300);
    await p.lockAndRead('deployed');
    await p.pool.close(() => undefined);
    expect(readFileSync(join(state, 'lock', 'owner'), 'utf8')).toContain('release=r2');
  });
});

describe('durations', () => {
  it('--wait-lock takes 90s, 10m, 1h30m or seconds, and refuses the rest', () => {
    const d = duration('--wait-lock');
    expect([d('90s'), d('10m'), d('1h30m'), d('45')]).toEqual([90_000, 600_000, 5_400_000, 45_000]);
    for (const bad of ['', '0', '10x', '-1m', 'm', '25h']) expect(() => d(bad), bad).toThrow(/--wait-lock/);
    expect([formatDuration(600_000), formatDuration(90_000), formatDuration(4200), formatDuration(0)]).toEqual(['10m', '1m30s', '5s', '0s']);
  });
});
