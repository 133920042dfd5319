// Run keel's real CLI in-process and capture what it prints (through the same redactor).
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { main } from '../../src/cli/main.js';
import { Redactor } from '../../src/report/redact.js';
import type { Output } from '../../src/report/output.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

export async function runKeel(args: string[], opts: { root: string; interactive?: boolean; signal?: AbortSignal }): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const redactor = new Redactor();
  const out: Output = {
    redactor,
    line: (t) => (stdout += redactor.mask(t) + '\n'),
    warn: (t) => (stderr += redactor.mask(t) + '\n'),
    json: (v) => (stdout += JSON.stringify(redactor.maskValue(v), null, 2) + '\n'),
    isTTY: false,
  };
  const code = await main(['node', 'keel', ...args], {
    root: opts.root,
    out,
    interactive: opts.interactive ?? false,
    ...(opts.signal && { signal: opts.signal }),
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

/** `keel provision itest --output json` in `root`; fails the test with the failed resources
 *  (and host errors) unless the run exits 0 with nothing failed (or, with `expectCode`, exits
 *  with that code). Returns the JSON report. */
export async function provisionItest(root: string, label: string, opts: { expectCode?: number } = {}): Promise<any> {
  const started = Date.now();
  const r = await runKeel(['provision', 'itest', '--output', 'json'], { root });
  let j: any;
  try {
    j = r.json();
  } catch {
    throw new Error(`${label}: keel exited ${r.code} without JSON:\n${r.stdout}\n${r.stderr}`);
  }
  const bad = j.hosts.flatMap((h: any) => [...(h.error ? [{ error: h.error }] : []), ...h.resources.filter((x: any) => x.status === 'failed')]);
  if (opts.expectCode !== undefined) {
    expect(r.code, `${label}: ${JSON.stringify(bad, null, 1)}\n${r.stderr}`).toBe(opts.expectCode);
    console.log(`${label}: exit ${r.code} as expected, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return j;
  }
  expect(j.failed, `${label}: ${JSON.stringify(bad, null, 1)}\n${r.stderr}`).toBe(0);
  expect(r.code, `${label}: ${JSON.stringify(bad, null, 1)}\n${r.stderr}`).toBe(0);
  console.log(`${label}: ${j.changed} changed, ${j.hosts[0].roundTrips} round trips, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return j;
}

/** Ids of the first host's changed resources in a JSON report. */
export function changedIds(j: any): string[] {
  return j.hosts[0].resources.filter((x: any) => x.status === 'changed').map((x: any) => x.id);
}

/** The first host's resources that are neither ok nor skipped, in a JSON report. */
export function notOk(j: any): unknown[] {
  return j.hosts[0].resources.filter((x: any) => x.status !== 'ok' && x.status !== 'skipped');
}

/** Apply, then apply again: the second run must change nothing. Returns the first report. */
export async function converge(root: string, label: string): Promise<any> {
  const first = await provisionItest(root, `${label} (1st run)`);
  expect(first.changed).toBeGreaterThan(0);
  const second = await provisionItest(root, `${label} (2nd run)`);
  expect(second.changed, JSON.stringify(notOk(second), null, 1)).toBe(0);
  return first;
}

/** keel's real CLI as a child process (signals, pipes): bin/keel.js on a fresh build of dist/
 *  (scripts/build.mjs: tsc, the precompiled validators, the bundle bin/keel.js runs). */
export async function spawnKeel(args: string[], opts: { root: string; env?: NodeJS.ProcessEnv }): Promise<ChildProcessWithoutNullStreams> {
  await built();
  return spawn(process.execPath, [join(packageRoot, 'bin', 'keel.js'), ...args], {
    cwd: opts.root,
    env: { ...process.env, ...opts.env, KEEL_ROOT: opts.root },
  });
}

/** Wait for a child to exit: its code (or 128 + signal), stdout and stderr. */
export function exited(child: ChildProcessWithoutNullStreams): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal ? osConstants.signals[signal] : 0), stdout, stderr })),
  );
}

const packageRoot = resolve(import.meta.dirname, '..', '..');
let building: Promise<void> | undefined;
function built(): Promise<void> {
  building ??= new Promise<void>((res, rej) =>
    execFile(process.execPath, [join(packageRoot, 'scripts', 'build.mjs')], { cwd: packageRoot }, (err, out, errOut) =>
      err ? rej(new Error(`the build failed: ${out}${errOut}`)) : res(),
    ),
  );
  return building;
}

export interface PtyKeel {
  /** What the terminal showed so far. */
  output(): string;
  /** Waits until the output matches (fails after `ms`, showing the output). */
  waitFor(re: RegExp, ms?: number): Promise<void>;
  /** Keystrokes, as a terminal sends them. */
  type(text: string): void;
  /** The exit code of keel (script -e passes it on). */
  exited: Promise<number>;
}

/** keel's real CLI on a pseudo-terminal of its own (util-linux `script`), `rows` x `cols`:
 *  for what needs a terminal (keel exec -i, keel ssh). */
export async function ptyKeel(args: string[], opts: { root: string; env?: NodeJS.ProcessEnv; rows?: number; cols?: number }): Promise<PtyKeel> {
  await built();
  const { quote } = await import('../../src/shell/quote.js');
  const keelLine = [process.execPath, join(packageRoot, 'bin', 'keel.js'), ...args].map((w) => quote(w)).join(' ');
  const command = `stty rows ${opts.rows ?? 24} cols ${opts.cols ?? 80}; exec ${keelLine}`;
  const child = spawn('script', ['-q', '-e', '-f', '-c', command, '/dev/null'], {
    cwd: opts.root,
    env: { ...process.env, ...opts.env, KEEL_ROOT: opts.root, TERM: 'xterm' },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code, signal) => {
      child.stdin.destroy();
      resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0));
    }),
  );
  return {
    output: () => out,
    async waitFor(re, ms = 30_000) {
      const end = Date.now() + ms;
      while (!re.test(out)) {
        if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${re} on the terminal; it showed:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    type: (text) => void child.stdin.write(text),
    exited,
  };
}
