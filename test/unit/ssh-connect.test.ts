// The SSH transport against ssh2's in-process Server: host keys, auth, faults, become, jumps.
import { createHmac, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { HostUnreachableError } from '../../src/errors.js';
import { connect, defaultKnownHostsFile, describeConnectError, type ConnectOptions } from '../../src/ssh/connect.js';
import { BecomeError, CommandTimeoutError, HostKeyError } from '../../src/ssh/errors.js';
import { fingerprint } from '../../src/ssh/known-hosts.js';
import type { HostSession } from '../../src/ssh/types.js';
import type { Connection } from '../../src/inventory/types.js';
import { fakeSudoBin, keyPair, publicLine, startServer, tempDir, testConnection, type TestServer, type TestServerOptions } from '../fixtures/ssh/server.js';

let dir: string;
let userKeyFile: string;
let userPublic: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  dir = await tempDir();
  const user = keyPair();
  userKeyFile = join(dir, 'id_ed25519');
  await writeFile(userKeyFile, user.private, { mode: 0o600 });
  userPublic = user.public;
});

afterEach(async () => {
  vi.unstubAllEnvs();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: Partial<TestServerOptions> = {}): Promise<TestServer> {
  const s = await startServer({ userKeys: [userPublic], ...opts });
  cleanups.push(() => s.close());
  return s;
}

/** A fresh known_hosts file holding the given lines. */
async function knownHosts(...lines: string[]): Promise<string> {
  const file = join(await tempDir(), 'known_hosts');
  await writeFile(file, lines.map((l) => l + '\n').join(''));
  return file;
}

function hostEntry(s: TestServer): string {
  return `[127.0.0.1]:${s.port} ${s.hostKeyLines[0]}`;
}

async function open(conn: Connection, knownHostsFile: string, extra: Partial<ConnectOptions> = {}): Promise<HostSession> {
  const session = await connect({ hostName: 'web1', connection: conn, knownHostsFile, acceptNewHostKeys: false, ...extra });
  cleanups.push(() => session.close());
  return session;
}

function catching(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: Error) => e,
  );
}

describe('host keys', () => {
  it('accepts a known key and runs a script: stdin in, stdout/stderr/exit code out', async () => {
    const s = await server();
    const session = await open(testConnection(s.port, userKeyFile), await knownHosts(hostEntry(s)));
    const script = 'x="it\'s $((1 + 1))"\necho "got $x"\necho oops >&2\nexit 3\n';
    const r = await session.runScript(script);
    expect(r).toEqual({ code: 3, stdout: "got it's 2\n", stderr: 'oops\n' });
    expect(s.execs[0]!.command).toBe('sh -s');
    expect(s.execs[0]!.stdin.toString()).toContain(script);
    // The next script goes to the same shell (one channel, one process on the host): an `exit`
    // in a script ends only that script.
    const r2 = await session.runScript('printf "%s" "héllo"');
    expect(r2).toEqual({ code: 0, stdout: 'héllo', stderr: '' });
    const r3 = await session.runScript('echo $$');
    const r4 = await session.runScript('echo $$');
    expect(r3.stdout).toBe(r4.stdout);
    expect(session.roundTrips).toBe(4);
    expect(s.execs).toHaveLength(1);
    expect(s.connections).toBe(1);
  });

  it('refuses a changed host key before authenticating, naming both fingerprints and file:line', async () => {
    const s = await server();
    const old = publicLine(keyPair().private);
    const file = await knownHosts('# first line', `[127.0.0.1]:${s.port} ${old}`);
    const err = await catching(open(testConnection(s.port, userKeyFile), file));
    expect(err).toBeInstanceOf(HostKeyError);
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(err.message).toContain('CHANGED');
    expect(err.message).toContain(fingerprint(Buffer.from(s.hostKeyLines[0]!.split(' ')[1]!, 'base64')));
    expect(err.message).toContain(fingerprint(Buffer.from(old.split(' ')[1]!, 'base64')));
    expect(err.message).toContain(`${file}:2`);
    expect(s.authAttempts).toBe(0);
  });

  it('refuses an unknown host with the exact fix', async () => {
    const s = await server();
    const file = await knownHosts();
    const err = (await catching(open(testConnection(s.port, userKeyFile), file))) as HostKeyError;
    expect(err).toBeInstanceOf(HostKeyError);
    expect(err.message).toMatch(/deploy@127\.0\.0\.1:\d+ is not in /);
    expect(err.hint).toContain('--accept-new-host-keys');
    expect(err.hint).toContain(`ssh-keyscan -p ${s.port} 127.0.0.1 >> ${file}`);
    expect(s.authAttempts).toBe(0);
  });

  it('records a new key with acceptNewHostKeys, then trusts it without', async () => {
    const s = await server();
    const file = join(await tempDir(), 'new', '.ssh', 'known_hosts');
    const first = await open(testConnection(s.port, userKeyFile), file, { acceptNewHostKeys: true });
    await first.close();
    expect(await readFile(file, 'utf8')).toBe(`${hostEntry(s)}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(file, '..'))).mode & 0o777).toBe(0o700);
    const second = await open(testConnection(s.port, userKeyFile), file);
    expect((await second.runScript('echo ok')).stdout).toBe('ok\n');
  });

  it('matches hashed entries', async () => {
    const s = await server();
    const salt = randomBytes(20);
    const mac = createHmac('sha1', salt).update(`[127.0.0.1]:${s.port}`).digest('base64');
    const file = await knownHosts(`|1|${salt.toString('base64')}|${mac} ${s.hostKeyLines[0]}`);
    const session = await open(testConnection(s.port, userKeyFile), file);
    expect((await session.runScript('echo ok')).code).toBe(0);
  });

  it('needs the [host]:port form for a port other than 22', async () => {
    const s = await server();
    const err = await catching(open(testConnection(s.port, userKeyFile), await knownHosts(`127.0.0.1 ${s.hostKeyLines[0]}`)));
    expect(err.message).toContain('is not in');
  });

  it('negotiates the key type known_hosts has for the host (RSA known, Ed25519 also served)', async () => {
    const rsa = keyPair('rsa').private;
    const s = await server({ hostKeys: [keyPair().private, rsa] });
    const file = await knownHosts(`[127.0.0.1]:${s.port} ${publicLine(rsa)}`);
    const session = await open(testConnection(s.port, userKeyFile), file);
    expect((await session.runScript('echo ok')).stdout).toBe('ok\n');
  });
});

describe('connection failures', () => {
  it('names the user, address and keys tried when authentication fails', async () => {
    const s = await server({ userKeys: [keyPair().public] });
    const err = await catching(open(testConnection(s.port, userKeyFile), await knownHosts(hostEntry(s))));
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(err.message).toContain(`web1: authentication failed for deploy@127.0.0.1:${s.port}`);
    expect(err.message).toContain(`key ${userKeyFile}`);
  });

  it('goes on past an unusable ssh-agent and lists it among what was tried', async () => {
    vi.stubEnv('SSH_AUTH_SOCK', join(dir, 'no-agent.sock'));
    const s = await server({ userKeys: [keyPair().public] });
    const conn = testConnection(s.port, userKeyFile, { agent: true });
    const err = await catching(open(conn, await knownHosts(hostEntry(s))));
    expect(err.message).toContain(`authentication failed for deploy@127.0.0.1:${s.port}`);
    expect(err.message).toMatch(new RegExp(`tried: key ${userKeyFile}; ssh-agent.*ssh-agent: `));
  });

  it('takes the known_hosts file from KEEL_KNOWN_HOSTS, else ~/.ssh/known_hosts', () => {
    vi.stubEnv('KEEL_KNOWN_HOSTS', '/etc/keel/known_hosts');
    expect(defaultKnownHostsFile()).toBe('/etc/keel/known_hosts');
    vi.stubEnv('KEEL_KNOWN_HOSTS', undefined);
    expect(defaultKnownHostsFile()).toMatch(/\/\.ssh\/known_hosts$/);
  });

  it('says "connection refused" for a closed port', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const err = await catching(open(testConnection(port, userKeyFile), await knownHosts()));
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(err.message).toBe(`web1: cannot connect to deploy@127.0.0.1:${port}: connection refused`);
    expect((err as HostUnreachableError).hint).toContain(`is sshd running there, and listening on port ${port}?`);
    expect((err as HostUnreachableError).hint).toContain('firewall');
  });

  it('a peer that hangs up before the SSH handshake: asks whether sshd is on that port', async () => {
    // Reading (resume) lets the server see the client go, so that it can close afterwards.
    const rude = createServer((sock) => sock.resume().end());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => rude.close(r)));
    const port = (rude.address() as AddressInfo).port;
    const err = (await catching(open(testConnection(port, userKeyFile), await knownHosts()))) as HostUnreachableError;
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(err.message).toBe(`web1: cannot connect to deploy@127.0.0.1:${port}: the host closed the connection before the SSH handshake`);
    expect(err.hint).toMatch(new RegExp(`^is sshd the service on port ${port} of 127\\.0\\.0\\.1\\?`));
    expect(err.hint).toContain('journalctl -u ssh');
  });

  it('an address that does not resolve: says so and points at the inventory', async () => {
    const conn = testConnection(22, userKeyFile, { address: 'no-such-host.invalid', connectTimeoutMs: 5000 });
    const err = (await catching(open(conn, await knownHosts()))) as HostUnreachableError;
    expect(err.message).toMatch(/^web1: cannot connect to deploy@no-such-host\.invalid:22: cannot resolve no-such-host\.invalid/);
    expect(err.hint).toContain('check the address no-such-host.invalid in the inventory');
  });

  it('every network failure has a hint: the address, the port, a firewall', () => {
    const hop = testConnection(2222, userKeyFile, { address: '203.0.113.9', connectTimeoutMs: 10_000 });
    const code = (c: string) => Object.assign(new Error(c), { code: c, level: 'client-socket' });
    const timeout = Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' });
    expect(describeConnectError(code('EHOSTUNREACH'), hop, 'connecting')).toEqual({
      why: 'host unreachable',
      hint: 'no route to 203.0.113.9: is the machine up, and is the address right? A firewall on the way may also reject it',
    });
    expect(describeConnectError(code('ENETUNREACH'), hop, 'connecting').hint).toMatch(/no route to 203\.0\.113\.9's network: is the address right\?/);
    expect(describeConnectError(code('ETIMEDOUT'), hop, 'connecting').hint).toMatch(
      /is the address right and the machine up\? A firewall may be dropping connections to port 2222/,
    );
    expect(describeConnectError(code('EAI_AGAIN'), hop, 'connecting').why).toBe('cannot resolve 203.0.113.9 (no answer from DNS)');
    expect(describeConnectError(code('ECONNRESET'), hop, 'handshake').hint).toMatch(/^is sshd the service on port 2222 of 203\.0\.113\.9\?/);
    // A timeout says how far the connection got: no answer at all, or not SSH on that port.
    expect(describeConnectError(timeout, hop, 'connecting')).toMatchObject({
      why: 'timed out after 10 s (no answer)',
      hint: expect.stringMatching(/firewall.*port 2222.*connect_timeout/),
    });
    expect(describeConnectError(timeout, hop, 'handshake')).toMatchObject({
      why: 'timed out after 10 s waiting for the SSH handshake',
      hint: expect.stringMatching(/^port 2222 of 203\.0\.113\.9 accepted the connection, but no SSH handshake followed: is sshd the service on port 2222\?/),
    });
    expect(describeConnectError(timeout, hop, 'authenticating').why).toBe('timed out after 10 s while authenticating');
  });

  it('times out a peer that never speaks SSH', async () => {
    // Reading (resume) lets the server see the client hang up, so it can close afterwards.
    const mute = createServer((sock) => sock.resume());
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => mute.close(r)));
    const port = (mute.address() as AddressInfo).port;
    const conn = testConnection(port, userKeyFile, { connectTimeoutMs: 300 });
    const err = await catching(open(conn, await knownHosts()));
    expect(err.message).toBe(`web1: cannot connect to deploy@127.0.0.1:${port}: timed out after 0.3 s waiting for the SSH handshake`);
    expect((err as HostUnreachableError).hint).toContain(`is sshd the service on port ${port}?`);
  });

  it('reports a connection lost mid-script as HostUnreachableError', async () => {
    const s = await server({
      exec: (channel, _rec, conn) => {
        channel.write('started\n');
        setTimeout(() => (conn as unknown as { _sock: { destroy(): void } })._sock.destroy(), 50);
      },
    });
    const session = await open(testConnection(s.port, userKeyFile), await knownHosts(hostEntry(s)));
    const err = await catching(session.runScript('sleep 10'));
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(err.message).toMatch(/^web1: connection lost while running a script on deploy@127\.0\.0\.1:\d+/);
    await expect(session.runScript('true')).rejects.toThrow(/lost earlier/);
  });

  it('stops a hung script after its timeout', async () => {
    const s = await server({ exec: () => {} });
    const session = await open(testConnection(s.port, userKeyFile), await knownHosts(hostEntry(s)), { commandTimeoutMs: 5000 });
    const started = Date.now();
    const err = await catching(session.runScript('sleep 100', { timeoutMs: 300 }));
    expect(err).toBeInstanceOf(CommandTimeoutError);
    expect(err.message).toBe('web1: the script timed out after 0.3 s and was stopped');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('become', () => {
  async function sudoServer(mode: 'password' | 'nopasswd') {
    const d = await tempDir();
    const bin = await fakeSudoBin(d);
    const log = join(d, 'attempts');
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAKE_SUDO: mode, FAKE_SUDO_PASSWORD: 'c0rrect horse', FAKE_SUDO_LOG: log };
    return Object.assign(await server({ env }), { attempts: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length });
  }
  const becomeConn = (port: number) => testConnection(port, userKeyFile, { become: true, becomeUser: 'root' });

  it("answers sudo's prompt with the password once, never on the command line, then runs every script in that shell", async () => {
    const s = await sudoServer('password');
    const session = await open(becomeConn(s.port), await knownHosts(hostEntry(s)), { becomePassword: 'c0rrect horse' });
    const r = await session.runScript('echo "as root"\n');
    expect(r).toEqual({ code: 0, stdout: 'as root\n', stderr: '' });
    expect((await session.runScript('echo again')).stdout).toBe('again\n');
    const { command, stdin } = s.execs[0]!;
    expect(s.execs).toHaveLength(1);
    expect(command).toMatch(/^sudo -S -p '\[keel-sudo-password\]' -u root -H -- sh -c /);
    expect(command).not.toContain('c0rrect');
    expect(stdin.toString().split('\n')[0]).toBe('c0rrect horse');
    expect(await s.attempts()).toBe(1);
  });

  it('a wrong password is one attempt, a BecomeError naming the lockout risk; the script never runs', async () => {
    const s = await sudoServer('password');
    const session = await open(becomeConn(s.port), await knownHosts(hostEntry(s)), { becomePassword: 'wrong pw' });
    const err = await catching(session.runScript('echo SCRIPT-RAN\n'));
    expect(err).toBeInstanceOf(BecomeError);
    expect(err.message).toBe('web1: sudo rejected the password for deploy on web1 (one attempt was made)');
    expect((err as BecomeError).hint).toMatch(/pam_faillock/);
    expect(err.message).not.toContain('wrong pw');
    expect(s.execs[0]!.stdin.toString()).not.toContain('SCRIPT-RAN');
    expect(await s.attempts()).toBe(1);
  });

  it('never sends (or executes) the password when sudo does not ask for it', async () => {
    const s = await sudoServer('nopasswd');
    const session = await open(becomeConn(s.port), await knownHosts(hostEntry(s)), { becomePassword: 'echo LEAKED' });
    const r = await session.runScript('echo fine\n');
    expect(r).toEqual({ code: 0, stdout: 'fine\n', stderr: '' });
    expect(s.execs[0]!.stdin.toString()).not.toContain('LEAKED');
  });

  it('asks for become_password in the vault when sudo needs one', async () => {
    const s = await sudoServer('password');
    const session = await open(becomeConn(s.port), await knownHosts(hostEntry(s)));
    const err = await catching(session.runScript('echo hi\n'));
    expect(err).toBeInstanceOf(BecomeError);
    expect((err as BecomeError).hint).toContain('become_password in the vault');
    expect(s.execs[0]!.command).toMatch(/^sudo -n -u root -H -- sh -c /);
  });

  it('runs plain sh -s when the user already is the become user', async () => {
    const s = await server();
    const session = await open(testConnection(s.port, userKeyFile, { user: 'root', become: true, becomeUser: 'root' }), await knownHosts(hostEntry(s)));
    await session.runScript('true');
    expect(s.execs[0]!.command).toBe('sh -s');
  });
});

describe('ProxyJump', () => {
  it('reaches the target through a jump host, checking both host keys, and closes both', async () => {
    const jump = await server({ tcpip: true });
    const target = await server();
    const conn = testConnection(target.port, userKeyFile, { jump: [testConnection(jump.port, userKeyFile, { user: 'hop' })] });
    const session = await connect({
      hostName: 'web1',
      connection: conn,
      knownHostsFile: await knownHosts(hostEntry(jump), hostEntry(target)),
      acceptNewHostKeys: false,
    });
    expect((await session.runScript('echo via jump')).stdout).toBe('via jump\n');
    expect(jump.open).toBe(1);
    expect(target.open).toBe(1);
    await session.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(jump.open).toBe(0);
    expect(target.open).toBe(0);
  });

  it('says which hop failed when the jump host cannot reach the target', async () => {
    const jump = await server({ tcpip: true });
    const conn = testConnection(1, userKeyFile, { jump: [testConnection(jump.port, userKeyFile, { user: 'hop' })] });
    const err = await catching(open(conn, await knownHosts(hostEntry(jump))));
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(err.message).toBe(
      `web1: cannot connect to deploy@127.0.0.1:1 through jump host hop@127.0.0.1:${jump.port}: ` + 'the jump host could not open a connection to it',
    );
    expect((err as HostUnreachableError).hint).toMatch(/is sshd running there on port 1, .*AllowTcpForwarding/);
  });

  it('checks the target host key too (unknown target behind a known jump)', async () => {
    const jump = await server({ tcpip: true });
    const target = await server();
    const conn = testConnection(target.port, userKeyFile, { jump: [testConnection(jump.port, userKeyFile)] });
    const err = await catching(open(conn, await knownHosts(hostEntry(jump))));
    expect(err).toBeInstanceOf(HostKeyError);
    expect(err.message).toContain(`deploy@127.0.0.1:${target.port} is not in`);
    await new Promise((r) => setTimeout(r, 50));
    expect(jump.open).toBe(0);
  });
});

// CI: the key and known_hosts come from secrets, as environment variables: no file on the
// runner, and a missing one is an error that names the variable to set.
describe('credentials from the environment (CI)', () => {
  it('KEEL_SSH_PRIVATE_KEY and KEEL_SSH_KNOWN_HOSTS: connects with neither a key file nor a known_hosts entry on disk', async () => {
    const s = await server();
    vi.stubEnv('KEEL_SSH_PRIVATE_KEY', (await readFile(userKeyFile, 'utf8')).replace(/\n/g, '\r\n'));
    vi.stubEnv('KEEL_SSH_KNOWN_HOSTS', `# from the secret\n${hostEntry(s)}\n`);
    // The inventory's key file does not exist on the runner: skipped, the variable's key is used.
    const session = await open(testConnection(s.port, join(dir, 'no-such-key')), join(dir, 'no-known-hosts'));
    expect((await session.runScript('echo ok')).stdout).toBe('ok\n');
  });

  it('without them: the errors name the variables', async () => {
    const s = await server();
    vi.stubEnv('KEEL_SSH_PRIVATE_KEY', await readFile(userKeyFile, 'utf8'));
    const unknown = (await catching(open(testConnection(s.port, join(dir, 'no-such-key')), join(dir, 'no-known-hosts')))) as HostKeyError;
    expect(unknown.hint).toMatch(/in CI, put those lines in \$KEEL_SSH_KNOWN_HOSTS/);
    vi.stubEnv('KEEL_SSH_KNOWN_HOSTS', hostEntry(s));
    vi.stubEnv('KEEL_SSH_PRIVATE_KEY', '');
    const noKey = (await catching(open(testConnection(s.port, join(dir, 'no-such-key')), join(dir, 'no-known-hosts')))) as HostUnreachableError;
    expect(noKey.message).toMatch(/cannot read key file .*no-such-key/);
    expect(noKey.hint).toMatch(/\$KEEL_SSH_PRIVATE_KEY/);
    vi.stubEnv('KEEL_SSH_PRIVATE_KEY', 'not a key at all');
    const bad = (await catching(open(testConnection(s.port, join(dir, 'no-such-key')), join(dir, 'no-known-hosts')))) as HostUnreachableError;
    expect(bad.message).toMatch(/\$KEEL_SSH_PRIVATE_KEY does not hold a private key/);
    expect(bad.message).not.toContain('not a key at all');
    expect(s.authAttempts).toBe(0);
  });
});
