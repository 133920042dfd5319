// An interrupt while a big script is still being sent (issue 26.7): the host has not got all of
// it, so none of it runs; the run's lock must not be left behind for a script that never ran.
// ssh2's in-process server stands in for a slow link (it stops reading: the window fills), and
// runs what it gets in this machine's sh, with its own state directory.
import { existsSync, mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/ssh/connect.js';
import { acquireSnippet, newLockOwner, parseLockReport, releaseScript } from '../../src/engine/lock.js';
import { PRELUDE, newNonce, wrap } from '../../src/engine/script-parts.js';
import { HostPool } from '../../src/engine/pool.js';
import { interruptLines } from '../../src/engine/run.js';
import type { Host } from '../../src/inventory/types.js';
import { type ExecHandler, startServer, tempDir, testConnection, type TestServer, sshTestKit } from '../fixtures/ssh/server.js';

const kit = sshTestKit();

/** Runs each exec in a local sh; the first one (the run's shell) stops reading its stdin once
 *  `stallAfter` bytes came, as a link that cannot keep up would. */
function stallingShell(state: string, stallAfter: number): { handler: ExecHandler; execs: string[] } {
  const execs: string[] = [];
  const handler: ExecHandler = (channel, record) => {
    const n = execs.push(record.command);
    const child = spawn('/bin/sh', ['-c', record.command], { env: { ...process.env, KEEL_STATE_DIR: state } });
    let seen = 0;
    channel.on('data', (d: Buffer) => {
      seen += d.length;
      child.stdin.write(d);
      if (n === 1 && seen > stallAfter) channel.pause();
    });
    channel.on('end', () => child.stdin.end());
    child.stdin.on('error', () => undefined);
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    child.on('close', (code) => {
      channel.exit(code ?? 1);
      channel.end();
    });
    channel.on('close', () => child.kill('SIGKILL'));
  };
  return { handler, execs };
}

describe('an interrupt while a script is still being sent', () => {
  it('cuts it off (none of it runs), releases the lock from a fresh shell, and says so', async () => {
    const state = join(await tempDir(), 'state');
    mkdirSync(state);
    const ran = join(state, 'the-big-script-ran');
    const { handler, execs } = stallingShell(state, 256 * 1024);
    const server: TestServer = await startServer({ userKeys: [kit.publicKey], exec: handler });
    kit.cleanups.push(() => server.close());
    const knownHostsFile = join(await tempDir(), 'known_hosts');
    await writeFile(knownHostsFile, `[127.0.0.1]:${server.port} ${server.hostKeyLines[0]}\n`);
    const host = { name: 'web1' } as Host;
    const pool = new HostPool(() =>
      connect({ hostName: 'web1', connection: testConnection(server.port, kit.keyFile), knownHostsFile, acceptNewHostKeys: false }),
    );

    // The run takes the host's lock (a small script: it gets there whole).
    const owner = newLockOwner('provision itest');
    const nonce = newNonce();
    const [locked] = await pool.each([host], (s) => s.runScript(wrap(PRELUDE + acquireSnippet(nonce, owner)), { timeoutMs: 20_000 }));
    expect(locked!.ok && parseLockReport(locked!.value.stdout, nonce)?.kind).toBe('acquired');
    expect(existsSync(join(state, 'lock'))).toBe(true);

    // Then a 20 MB script (a big template): the host stops reading a quarter MB in.
    pool.setPhase('web1', 'apply');
    const big = wrap(`${PRELUDE}: '${'x'.repeat(20 * 1024 * 1024)}'\ntouch '${ran}'\n`);
    const sending = pool.each([host], (s) => s.runScript(big, { timeoutMs: 60_000 }));
    sending.catch(() => undefined);
    const session = await pool.session(host);
    for (let i = 0; i < 500 && !session.sending; i++) await new Promise((r) => setTimeout(r, 10));
    expect(session.sending).toBe(true);

    const states = await pool.abandon(['web1'], () => releaseScript(owner.run_id));
    expect(states).toEqual([{ host: 'web1', phase: 'apply', busy: false, cutOff: true }]);
    expect(interruptLines(states, true)).toEqual(['web1: its apply script was still being sent: none of it ran. Its lock is released now.']);
    // A second shell ran the release; the lock is gone, and the cut script never ran.
    expect(execs).toHaveLength(2);
    expect(existsSync(join(state, 'lock'))).toBe(false);
    expect(existsSync(ran)).toBe(false);
  });
});
