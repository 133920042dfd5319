import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planAuth } from '../../src/ssh/auth.js';
import { becomeFailure, remoteInvocation, SUDO_PROMPT } from '../../src/ssh/become.js';
import { BecomeError } from '../../src/ssh/errors.js';
import { fingerprint, hostFieldMatches, judgeHostKey, knownHostName, parseKnownHosts, preferredHostKeyAlgorithms } from '../../src/ssh/known-hosts.js';
import { keyPair, publicLine, tempDir, testConnection } from '../fixtures/ssh/server.js';

const ed = publicLine(keyPair().private);
const ed2 = publicLine(keyPair().private);
const blob = (line: string) => Buffer.from(line.split(' ')[1]!, 'base64');

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts parsing and matching', () => {
  it('names hosts like OpenSSH', () => {
    expect(knownHostName('Web1.Example', 22)).toBe('web1.example');
    expect(knownHostName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('matches plain, comma lists, [host]:port, globs, negations and hashed entries', () => {
    expect(hostFieldMatches('a,10.0.0.1,b', '10.0.0.1')).toBe(true);
    expect(hostFieldMatches('10.0.0.1', '[10.0.0.1]:2222')).toBe(false);
    expect(hostFieldMatches('[10.0.0.1]:2222', '[10.0.0.1]:2222')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'web.example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false);
    expect(hostFieldMatches(hashed('[127.0.0.1]:2200'), '[127.0.0.1]:2200')).toBe(true);
    expect(hostFieldMatches(hashed('[127.0.0.1]:2200'), '[127.0.0.1]:2201')).toBe(false);
  });

  it('keeps line numbers, markers, and skips comments and junk', () => {
    const text = ['# comment', '', `web1 ${ed}`, 'garbage', `@revoked * ${ed2}`, `@cert-authority *.x ${ed2}`].join('\n');
    const entries = parseKnownHosts(text, '/k');
    expect(entries.map((e) => [e.line, e.marker, e.hosts])).toEqual([
      [3, undefined, 'web1'],
      [5, 'revoked', '*'],
      [6, 'cert-authority', '*.x'],
    ]);
  });

  it('judges known, changed, unknown and revoked keys', () => {
    const entries = parseKnownHosts(`web1 ${ed}\n@revoked * ${ed2}\n`, '/k');
    expect(judgeHostKey(entries, 'web1', blob(ed)).kind).toBe('known');
    expect(judgeHostKey(entries, 'web2', blob(ed)).kind).toBe('unknown');
    expect(judgeHostKey(entries, 'web2', blob(ed2)).kind).toBe('revoked');
    const third = publicLine(keyPair().private);
    const v = judgeHostKey(entries, 'web1', blob(third));
    expect(v.kind).toBe('changed');
    // A CA line says nothing about the host's own key: still unknown.
    expect(judgeHostKey(parseKnownHosts(`@cert-authority * ${ed}`, '/k'), 'web1', blob(ed)).kind).toBe('unknown');
  });

  it('prefers host key algorithms already recorded for the host', () => {
    const rsa = parseKnownHosts(`h ssh-rsa ${blobLine('ssh-rsa')}`, '/k');
    expect(preferredHostKeyAlgorithms(rsa)?.slice(0, 4)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    expect(preferredHostKeyAlgorithms([])).toBeUndefined();
  });

  it('prints fingerprints exactly like ssh-keygen -l', async () => {
    const dir = await tempDir();
    const file = join(dir, 'k.pub');
    writeFileSync(file, `${ed} c\n`);
    let out: string;
    try {
      out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' });
    } catch {
      return; // ssh-keygen not installed: the format is still checked below
    }
    expect(out).toContain(fingerprint(blob(ed)));
    expect(fingerprint(blob(ed))).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

/** A syntactically valid blob of a given type (for parsing tests only). */
function blobLine(type: string): string {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.alloc(8)]).toString('base64');
}

describe('become command line', () => {
  const conn = testConnection(22, '/k', { become: true, user: 'deploy', becomeUser: 'root' });

  it('runs plain sh -s without become or when already the become user', () => {
    expect(remoteInvocation('web1', { ...conn, become: false }, 'pw').command).toBe('sh -s');
    expect(remoteInvocation('web1', { ...conn, user: 'root' }, 'pw')).toMatchObject({ command: 'sh -s', handshake: 'none' });
  });

  it('never puts the password on the command line: sudo -S answers a prompt of its own', () => {
    const inv = remoteInvocation('web1', { ...conn, becomeUser: "o'brien" }, "s3cr'et $(x)");
    expect(inv.command).toMatch(/^sudo -S -p '\[keel-sudo-password\]' -u 'o'\\''brien' -H -- sh -c /);
    expect(inv.command).toContain(SUDO_PROMPT);
    expect(inv.command).not.toContain('s3cr');
    expect(inv.handshake).toBe('password');
  });

  it('uses sudo -n without a password, and refuses a password with a newline', () => {
    expect(remoteInvocation('web1', conn, undefined)).toMatchObject({ handshake: 'ready' });
    expect(remoteInvocation('web1', conn, undefined).command).toMatch(/^sudo -n -u root -H -- sh -c /);
    expect(() => remoteInvocation('web1', conn, 'a\nb')).toThrow(BecomeError);
  });

  it('recognises sudo refusals, and says that one wrong password was one attempt', () => {
    const withPw = remoteInvocation('web1', conn, 'pw');
    const fail = (stderr: string, o: { code?: number; prompts?: number; answered?: boolean } = {}) =>
      becomeFailure('web1', withPw, { code: o.code ?? 1, prompts: o.prompts ?? 0, answered: o.answered ?? false, stderr });
    const wrong = fail('Sorry, try again.\n', { prompts: 2, answered: true })!;
    expect(wrong.message).toBe('web1: sudo rejected the password for deploy on web1 (one attempt was made)');
    expect(wrong.hint).toMatch(/pam_faillock/);
    expect(fail('sudo: a password is required\n')!.message).toMatch(/needs a password/);
    expect(fail('', { prompts: 1, answered: false })!.hint).toMatch(/become_password in the vault/);
    expect(fail('deploy is not in the sudoers file.\n')).toBeInstanceOf(BecomeError);
    expect(fail('sh: 1: sudo: not found\n', { code: 127 })!.message).toMatch(/sudo is not installed/);
    expect(fail('some script error\n')).toBeUndefined();
  });
});

describe('auth plan', () => {
  it('asks for a passphrase for an encrypted key, and uses KEEL_SSH_KEY_PASSPHRASE', async () => {
    const dir = await tempDir();
    const file = join(dir, 'id_enc');
    writeFileSync(file, keyPair('ed25519', 'hunter22').private);
    const conn = testConnection(22, file);
    await expect(planAuth(conn, {})).rejects.toThrow(/is encrypted and no passphrase was given/);
    await expect(planAuth(conn, { KEEL_SSH_KEY_PASSPHRASE: 'wrong' })).rejects.toThrow(/cannot decrypt/);
    const plan = await planAuth(conn, { KEEL_SSH_KEY_PASSPHRASE: 'hunter22' });
    expect(plan.methods.map((m) => m.label)).toEqual([`key ${file}`]);
    // With an agent the encrypted key is skipped (the agent probably holds it).
    const agentPlan = await planAuth({ ...conn, agent: true }, { SSH_AUTH_SOCK: '/tmp/agent.sock' });
    expect(agentPlan.methods.map((m) => m.label)).toEqual(['ssh-agent']);
    expect(agentPlan.skipped[0]).toContain(file);
  });

  it('parses a key once for all hosts and hands ssh2 the parsed key; a changed file is parsed again', async () => {
    const dir = await tempDir();
    const file = join(dir, 'id_ed25519');
    writeFileSync(file, keyPair().private);
    const keyOf = async () => (await planAuth(testConnection(22, file), {})).methods[0]!.method as { key: unknown };
    const first = (await keyOf()).key;
    expect(first).not.toBeInstanceOf(Buffer);
    expect(typeof (first as { sign?: unknown }).sign).toBe('function');
    expect((await keyOf()).key).toBe(first);
    writeFileSync(file, keyPair().private);
    const other = (await keyOf()).key as { getPublicSSH(): Buffer };
    expect(other).not.toBe(first);
    expect(other.getPublicSSH().equals((first as { getPublicSSH(): Buffer }).getPublicSSH())).toBe(false);
  });

  it('fails clearly on a missing key file the inventory names', async () => {
    await expect(planAuth(testConnection(22, '/nonexistent/id_x'), {})).rejects.toThrow(/cannot read key file \/nonexistent\/id_x/);
  });
});
