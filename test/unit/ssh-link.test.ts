// Processes on channels of their own (src/ssh/link.ts) against ssh2's in-process server, whose
// execs run in the local sh (and a stand-in sudo): output as it comes, exit codes, and sudo
// answered once with the password on stdin, never on the command line.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLink, type HostLink } from '../../src/ssh/link.js';
import { BecomeError } from '../../src/ssh/errors.js';
import { raw } from '../../src/shell/quote.js';
import type { Connection } from '../../src/inventory/types.js';
import { fakeSudoBin, startServer, tempDir, testConnection, type TestServer, sshTestKit } from '../fixtures/ssh/server.js';

const kit = sshTestKit();

async function sudoServer(mode: 'password' | 'nopasswd' | 'plain') {
  const d = await tempDir();
  const bin = await fakeSudoBin(d);
  const log = join(d, 'attempts');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_SUDO: mode, FAKE_SUDO_PASSWORD: 'c0rrect horse', FAKE_SUDO_LOG: log };
  const s = await startServer({ userKeys: [kit.publicKey], ...(mode === 'plain' ? {} : { env }) });
  kit.cleanups.push(() => s.close());
  return Object.assign(s, { attempts: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length });
}

async function link(s: TestServer, conn: Partial<Connection>, becomePassword?: string): Promise<HostLink> {
  const known = join(await tempDir(), 'known_hosts');
  await writeFile(known, `[127.0.0.1]:${s.port} ${s.hostKeyLines[0]}\n`);
  const l = await openLink({
    hostName: 'web1',
    connection: testConnection(s.port, kit.keyFile, conn),
    knownHostsFile: known,
    acceptNewHostKeys: false,
    becomePassword,
  });
  kit.cleanups.push(() => l.close());
  return l;
}

/** Start `command`, collect its output, wait for its exit. */
async function run(l: HostLink, command: string, become = true) {
  let out = '';
  let err = '';
  const p = await l.start(raw(command), { become, onStdout: (d) => (out += d), onStderr: (d) => (err += d) });
  p.end();
  const exit = await p.exited;
  return { exit, out, err };
}

describe('HostLink processes', () => {
  it('stream stdout and stderr and give the exit code; no sudo when the connection does not become', async () => {
    const s = await sudoServer('plain');
    const l = await link(s, {});
    const r = await run(l, 'echo out; echo err >&2; exit 3');
    expect(r).toEqual({ exit: { code: 3 }, out: 'out\n', err: 'err\n' });
    expect(s.execs.at(-1)!.command).toBe('echo out; echo err >&2; exit 3');
  });

  it("answers sudo's prompt once with the password on stdin, never on the command line, and shows none of sudo's output", async () => {
    const s = await sudoServer('password');
    const l = await link(s, { become: true, becomeUser: 'root' }, 'c0rrect horse');
    const r = await run(l, 'echo right away; echo also >&2; cat');
    expect(r).toEqual({ exit: { code: 0 }, out: 'right away\n', err: 'also\n' });
    const { command, stdin } = s.execs.at(-1)!;
    expect(command).toMatch(/^sudo -S -p '\[keel-sudo-password\]' -u root -H -- sh -c /);
    expect(command).not.toContain('c0rrect');
    expect(stdin.toString()).toBe('c0rrect horse\n');
    expect(await s.attempts()).toBe(1);
  });

  it('a wrong password is one attempt and a BecomeError; the command never runs', async () => {
    const s = await sudoServer('password');
    const l = await link(s, { become: true, becomeUser: 'root' }, 'wrong pw');
    const err = await run(l, 'echo RAN > /dev/null; echo RAN').then(
      () => new Error('expected a rejection'),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(BecomeError);
    expect(err.message).toBe('web1: sudo rejected the password for deploy on web1 (one attempt was made)');
    expect(await s.attempts()).toBe(1);
  });

  it('sudo -n without a password; its refusal says to put become_password in the vault', async () => {
    const ok = await sudoServer('nopasswd');
    expect((await run(await link(ok, { become: true, becomeUser: 'root' }), 'echo fine')).out).toBe('fine\n');
    expect(ok.execs.at(-1)!.command).toMatch(/^sudo -n -u root -H -- sh -c /);
    const needs = await sudoServer('password');
    const err = await run(await link(needs, { become: true, becomeUser: 'root' }), 'echo x').catch((e: BecomeError) => e);
    expect(err).toBeInstanceOf(BecomeError);
    expect((err as BecomeError).hint).toContain('become_password in the vault');
  });

  it('become: false runs as the connection user even on a become host', async () => {
    const s = await sudoServer('password');
    const r = await run(await link(s, { become: true, becomeUser: 'root' }, 'c0rrect horse'), 'echo as me', false);
    expect(r.out).toBe('as me\n');
    expect(s.execs.at(-1)!.command).toBe('echo as me');
    expect(await s.attempts()).toBe(0);
  });
});
