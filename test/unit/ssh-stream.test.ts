// Following a script's stdout line by line as it arrives (RunScriptOptions.onStdoutLine), over
// ssh2's in-process server: a real sh for the timing, a scripted peer for bytes cut anywhere.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerChannel } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { HostUnreachableError } from '../../src/errors.js';
import { connect } from '../../src/ssh/connect.js';
import type { HostSession } from '../../src/ssh/types.js';
import { type ExecHandler, startServer, tempDir, testConnection, type TestServer, sshTestKit } from '../fixtures/ssh/server.js';

const kit = sshTestKit();

async function open(exec?: ExecHandler): Promise<{ server: TestServer; session: HostSession }> {
  const server = await startServer({ userKeys: [kit.publicKey], ...(exec && { exec }) });
  kit.cleanups.push(() => server.close());
  const knownHostsFile = join(await tempDir(), 'known_hosts');
  await writeFile(knownHostsFile, `[127.0.0.1]:${server.port} ${server.hostKeyLines[0]}\n`);
  const session = await connect({ hostName: 'web1', connection: testConnection(server.port, kit.keyFile), knownHostsFile, acceptNewHostKeys: false });
  kit.cleanups.push(() => session.close());
  return { server, session };
}

/** Resolves when `check` holds (polled every 10 ms), or fails after `ms` saying what it awaited. */
async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A peer that answers each framed script with `chunks` (its stdout, cut where the test says),
 * each written once the client has read the one before, then the end markers: the marker
 * itself may be cut too (`markerCut`), or never come (`drop`: the connection is destroyed).
 */
function scriptedPeer(chunks: (string | Buffer)[], opts: { markerCut?: number; drop?: boolean } = {}): ExecHandler {
  return (channel: ServerChannel, _record, conn) => {
    channel.on('end', () => {
      channel.exit(0);
      channel.end();
    });
    let stdin = '';
    channel.on('data', async (d: Buffer) => {
      stdin += d.toString();
      const nonce = /printf '\\n%s X %s\\n' '(@@keel-[0-9a-f]+)'/.exec(stdin)?.[1];
      if (!nonce) return;
      stdin = '';
      const write = (s: string | Buffer) => new Promise<void>((r) => channel.write(s, () => r()));
      for (const c of chunks) {
        await write(c);
        // Let the client read this chunk on its own before the next one arrives.
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 5));
      }
      if (opts.drop) return (conn as unknown as { _sock: { destroy(): void } })._sock.destroy();
      const marker = `\n${nonce} X 0\n`;
      const cut = opts.markerCut ?? marker.length;
      await write(marker.slice(0, cut));
      await new Promise((r) => setTimeout(r, 5));
      await write(marker.slice(cut));
      channel.stderr.write(`\n${nonce} X\n`);
    });
  };
}

describe('onStdoutLine', () => {
  it('passes each line while the script still runs', async () => {
    const { session } = await open();
    const go = join(await tempDir(), 'go');
    const lines: string[] = [];
    let ended = false;
    const run = session
      .runScript(`echo one\nwhile [ ! -e '${go}' ]; do sleep 0.02; done\necho two\n`, { onStdoutLine: (l) => lines.push(l) })
      .finally(() => (ended = true));
    await until('the first line', () => lines.length > 0);
    expect(lines).toEqual(['one']);
    expect(ended).toBe(false);
    expect(existsSync(go)).toBe(false);
    await writeFile(go, '');
    const r = await run;
    expect(lines).toEqual(['one', 'two']);
    expect(r).toEqual({ code: 0, stdout: 'one\ntwo\n', stderr: '' });
  });

  it('joins a line cut across chunks, keeps an empty line, and never passes the end marker or its newline', async () => {
    for (const markerCut of [0, 1, 4, 12]) {
      const e = Buffer.from('é');
      const { session } = await open(scriptedPeer(['a\nb', 'c\n', '\n', e.subarray(0, 1), e.subarray(1), '\n'], { markerCut }));
      const lines: string[] = [];
      const r = await session.runScript('true', { onStdoutLine: (l) => lines.push(l) });
      expect(lines, `marker cut at ${markerCut}`).toEqual(['a', 'bc', '', 'é']);
      expect(r.stdout).toBe('a\nbc\n\né\n');
      await session.close();
    }
  });

  it('passes a last line without a newline when the script ends', async () => {
    const { session } = await open();
    const lines: string[] = [];
    const r = await session.runScript("printf 'x\\ny'", { onStdoutLine: (l) => lines.push(l) });
    expect(lines).toEqual(['x', 'y']);
    expect(r.stdout).toBe('x\ny');
    // The next script of the same shell starts with its own lines.
    const next: string[] = [];
    await session.runScript('echo z', { onStdoutLine: (l) => next.push(l) });
    expect(next).toEqual(['z']);
  });

  it('never passes a line cut by a dropped connection; the script fails as a lost connection', async () => {
    const { session } = await open(scriptedPeer(['@@keel-1 B 0\n@@keel-1 C 0', ' 12'], { drop: true }));
    const lines: string[] = [];
    const err = await session.runScript('true', { onStdoutLine: (l) => lines.push(l) }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(HostUnreachableError);
    expect(lines).toEqual(['@@keel-1 B 0']);
  });

  it('a callback that throws fails the script with its error; the shell goes on', async () => {
    const { session } = await open();
    const err = await session
      .runScript('echo a; echo b', {
        onStdoutLine: () => {
          throw new Error('display bug');
        },
      })
      .catch((e: Error) => e);
    expect((err as Error).message).toBe('display bug');
    expect((await session.runScript('echo ok')).stdout).toBe('ok\n');
  });
});
