// wrapGathered (the probe's wrapper) runs under a real `sh`: the script's output reaches stdout
// only once the script has ended, byte for byte what wrap gives (trailing newlines too), with
// the script's exit status; stderr is not held back.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { wrap, wrapGathered } from '../../src/engine/script-parts.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-gathered-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Run `script` with sh, stdout into a file; `onErr` sees each stderr chunk with that file's
 *  content at that moment. */
function runSh(script: string, onErr: (err: string, outSoFar: string) => void = () => {}): Promise<{ code: number | null; out: string }> {
  const outFile = join(dir, 'out');
  const fd = openSync(outFile, 'w');
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  const stderr = child.stderr!;
  stderr.setEncoding('utf8');
  stderr.on('data', (d: string) => onErr(d, readFileSync(outFile, 'utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('sh did not end within 20 s'));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: readFileSync(outFile, 'utf8') });
    });
  });
}

describe('wrapGathered', () => {
  it('writes nothing on stdout until the script has ended, while stderr streams', async () => {
    // The body prints a line, then says so on stderr and waits until the test has looked.
    const go = join(dir, 'go');
    const body = `printf 'first\\n'\necho printed >&2\nn=0; while [ ! -e '${go}' ] && [ $n -lt 2000 ]; do sleep 0.01; n=$((n+1)); done\nprintf 'second\\n'`;
    const seen: string[] = [];
    const onErr = (err: string, outSoFar: string) => {
      if (!err.includes('printed')) return;
      seen.push(outSoFar);
      writeFileSync(go, '');
    };
    const gathered = await runSh(wrapGathered(body), onErr);
    expect(seen).toEqual(['']);
    expect(gathered.out).toBe('first\nsecond\n');
    rmSync(go);
    // The plain wrap, the same way: the first line is out before the script ends (this is what
    // the test above would see if the output were not gathered).
    seen.length = 0;
    await runSh(wrap(body), onErr);
    expect(seen).toEqual(['first\n']);
  });

  it('gives the same bytes as wrap, trailing newlines included, and the exit status', async () => {
    const bodies = [`printf 'a\\n\\n\\n'`, `printf 'no newline'`, `printf ''`, `printf 'x.\\n.'`, `printf 'lock held\\n'; exit 0\nprintf 'never'`];
    for (const body of bodies) {
      const plain = await runSh(wrap(body));
      const gathered = await runSh(wrapGathered(body));
      expect(gathered, body).toEqual(plain);
    }
    const failing = `printf 'partial\\n'\nexit 7`;
    expect(await runSh(wrapGathered(failing))).toEqual({ code: 7, out: 'partial\n' });
  });

  it('holds a large output and writes it whole', async () => {
    // 400 resources' probe is about 36 KB; a diff run carries old contents: take 2 MB.
    const body = `i=0; while [ $i -lt 20000 ]; do printf '%099d\\n' $i; i=$((i+1)); done`;
    const r = await runSh(wrapGathered(body));
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(20000 * 100);
    expect(r.out.endsWith('19999\n')).toBe(true);
  });
});
