// bin/keel.js starts the bundle with V8's code cache (src/cli/launch.ts): a file per command
// under the user's cache directory, written after a run that had none or whose cache V8
// refused. Whatever the cache holds (nothing, a good one, garbage) or wherever it cannot be
// written, keel says and exits the same.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, spawnKeel } from '../helpers/cli.js';

let dir: string;
let project: string;
let cacheHome: string;
const cacheDir = () => join(cacheHome, 'keel', 'code-cache');
const entries = () => {
  try {
    return readdirSync(cacheDir()).sort();
  } catch {
    return [];
  }
};

async function keel(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await exited(await spawnKeel(args, { root: project, env: { XDG_CACHE_HOME: cacheHome, KEEL_NO_CACHE: '', ...env } }));
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-code-cache-'));
  project = join(dir, 'project');
  cacheHome = join(dir, 'cache');
  writeFileSync(join(dir, 'not-a-directory'), '');
  mkdirSync(project);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the code cache of bin/keel.js', () => {
  it('is written by a first run, used as it is by the next, replaced when V8 refuses it; the output never changes', async () => {
    // No project here: plan fails the same way each time, after loading most of the CLI.
    const without = await keel(['plan', 'staging'], { KEEL_NO_CACHE: '1' });
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/staging/);
    expect(entries()).toEqual([]);

    const first = await keel(['plan', 'staging']);
    expect(first).toEqual(without);
    const [file, ...others] = entries();
    expect(others).toEqual([]);
    expect(file).toMatch(/^[0-9a-f]{20}-v8-.*-plan\.bin$/);
    const written = readFileSync(join(cacheDir(), file!));
    expect(written.length).toBeGreaterThan(10_000);
    const mtime = statSync(join(cacheDir(), file!)).mtimeMs;

    // Taken as it is: not written again.
    expect(await keel(['plan', 'staging'])).toEqual(without);
    expect(statSync(join(cacheDir(), file!)).mtimeMs).toBe(mtime);

    // Garbage: V8 refuses it, the CLI compiles from source, and a good cache replaces it.
    writeFileSync(join(cacheDir(), file!), Buffer.alloc(written.length, 0x5a));
    expect(await keel(['plan', 'staging'])).toEqual(without);
    const replaced = readFileSync(join(cacheDir(), file!));
    expect(replaced.equals(Buffer.alloc(written.length, 0x5a))).toBe(false);
    expect(replaced.length).toBeGreaterThan(10_000);

    // Another command has its own file.
    const version = await keel(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
    expect(entries()).toEqual(expect.arrayContaining([file, expect.stringMatching(/-other\.bin$/)]));
    expect(entries()).toHaveLength(2);
  });

  it("starts without Node's http, https and tls: ssh2's HTTP agents are left out of the bundle", async () => {
    // A preload writes the built-in modules the process loaded when it exits.
    const preload = join(dir, 'loaded.cjs');
    const list = join(dir, 'loaded.txt');
    writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
    const without = await keel(['plan', 'staging'], { KEEL_NO_CACHE: '1' });
    expect(await keel(['plan', 'staging'], { NODE_OPTIONS: `--require ${preload}` })).toEqual(without);
    const loaded = readFileSync(list, 'utf8').split('\n');
    expect(loaded).toContain('NativeModule net'); // ssh2 was loaded
    expect(loaded.filter((m) => /^NativeModule (_?https?|tls)$/.test(m))).toEqual([]);
  });

  it('a cache directory that cannot be made changes nothing but the speed', async () => {
    const without = await keel(['plan', 'staging'], { KEEL_NO_CACHE: '1' });
    expect(await keel(['plan', 'staging'], { XDG_CACHE_HOME: join(dir, 'not-a-directory') })).toEqual(without);
  });
});
