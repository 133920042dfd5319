// The examples of examples/seed-*/ as a user runs them: a copy of the project in a temp
// directory, the sample app's repository made in it (.keel/app-repo), its local targets
// started with keel's own `targetUp` (the code of `keel target up`), keel's CLI run in-process.
import { quote } from '../../src/shell/quote.js';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { containerName, networkName, targetDown, targetUp, type UpResult } from '../../src/target/docker.js';
import { docker, dockerExecSh, runCommand } from '../../src/target/docker-cli.js';
import { readRegistry, type Distro } from '../../src/target/registry.js';
import { runKeel, type CliRun } from './cli.js';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

const warm = new Map<Distro, Promise<string>>();

/** The target image with the stack's Debian packages preinstalled (scripts/build-warm-image.sh
 *  prints its tag): the examples' time goes to what they show (provision, deploy, the checks),
 *  not to apt installing nginx and PostgreSQL five times. Installing is the role tests' job. */
export function warmImage(distro: Distro = 'bookworm'): Promise<string> {
  if (!warm.has(distro)) {
    warm.set(
      distro,
      (async () => {
        const r = await runCommand('sh', [join(repoRoot, 'scripts', 'build-warm-image.sh'), distro]);
        const tag = r.stdout.trim().split('\n').pop() ?? '';
        if (r.code !== 0 || !/^keel-target-warm:\S+$/.test(tag)) throw new Error(`building the ${distro} warm image failed (${r.code}):\n${r.stderr}`);
        return tag;
      })(),
    );
  }
  return warm.get(distro)!;
}

export interface Example {
  name: string;
  root: string;
  env: string;
  /** The project's local targets, by name, once `up` ran. */
  up?: UpResult;
  started: number;
}

/** examples/<name> copied to a temp dir, with the sample app's repository at .keel/app-repo. */
export function copyExample(name: string, env: string): Example {
  const root = mkdtempSync(join(tmpdir(), `keel-${name}-`));
  cpSync(join(repoRoot, 'examples', name), root, { recursive: true });
  execFileSync('sh', [join(repoRoot, 'examples', 'sample-app', 'make-repo.sh'), join(root, '.keel', 'app-repo')], { stdio: 'ignore' });
  return { name, root, env, started: Date.now() };
}

/** `keel target up NAMES... [--distro D]` for the example, on the warm image of that release. */
export async function upTargets(ex: Example, names: string[], distro: Distro = 'bookworm'): Promise<UpResult> {
  const saved = process.env.KEEL_TARGET_IMAGE;
  process.env.KEEL_TARGET_IMAGE = await warmImage(distro);
  try {
    ex.up = await targetUp({ root: ex.root, names, distro });
    return ex.up;
  } finally {
    if (saved === undefined) delete process.env.KEEL_TARGET_IMAGE;
    else process.env.KEEL_TARGET_IMAGE = saved;
  }
}

/** `keel target down` and the temp dir removed; logs the example's time. */
export async function finish(ex: Example | undefined): Promise<void> {
  if (!ex) return;
  try {
    await targetDown({ root: ex.root, forget: true }).catch((err) => console.log(`${ex.name}: target down: ${(err as Error).message}`));
  } finally {
    rmSync(ex.root, { recursive: true, force: true });
    console.log(`${ex.name}: ${((Date.now() - ex.started) / 1000).toFixed(1)} s in all`);
  }
}

/** A shell script run as root in one of the example's targets (through the engine, not SSH). */
export async function onTarget(ex: Example, target: string, script: string): Promise<string> {
  const r = await dockerExecSh(containerName(ex.root, target), script);
  if (r.code !== 0) throw new Error(`${target}: exit ${r.code}: ${script}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** An example's target as a place to run commands (a request loop: requests.ts). */
export function exampleTarget(ex: Example, target: string): { exec(cmd: string[]): Promise<{ code: number | null; stdout: string }> } {
  return { exec: (cmd) => dockerExecSh(containerName(ex.root, target), cmd.map((w) => quote(w)).join(' ')) };
}

/** The exit code of a script in a target. */
export async function codeOn(ex: Example, target: string, script: string): Promise<number | null> {
  return (await dockerExecSh(containerName(ex.root, target), script)).code;
}

/** A target's address on the project's Docker network (its "private network"). */
export async function privateAddress(ex: Example, target: string): Promise<string> {
  const out = await docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${networkName(ex.root)}").IPAddress}}`, containerName(ex.root, target)]);
  const ip = out.trim();
  expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  return ip;
}

/** The ports `keel target up` recorded for a target (.keel/target/targets.json). */
export async function recordedPorts(ex: Example, target: string): Promise<{ ssh: number; http: number; https: number }> {
  const reg = await readRegistry(ex.root);
  const t = reg.targets[target];
  if (!t) throw new Error(`no target ${target} in ${ex.root}/.keel/target/targets.json`);
  return t.ports;
}

/** Replace the value of `key:` on its own line in a file of the example (indentation kept). */
export function setLine(ex: Example, file: string, key: string, value: string): void {
  const path = join(ex.root, file);
  const text = readFileSync(path, 'utf8');
  const re = new RegExp(`^(\\s*${key}:) .*$`, 'm');
  expect(re.test(text), `${file} has no line "${key}: ..."`).toBe(true);
  writeFileSync(path, text.replace(re, `$1 ${value}`));
}

/** A keel command in the example's directory. */
export function keel(ex: Example, ...args: string[]): Promise<CliRun> {
  return runKeel(args, { root: ex.root });
}

/** `keel provision <env> --output json`: the run must pass; returns the report. */
export async function provision(ex: Example, label: string, ...more: string[]): Promise<any> {
  const started = Date.now();
  const r = await keel(ex, 'provision', ex.env, '--output', 'json', ...more);
  let j: any;
  try {
    j = r.json();
  } catch {
    throw new Error(`${ex.name} ${label}: keel exited ${r.code} without JSON:\n${r.stdout}\n${r.stderr}`);
  }
  const bad = j.hosts.flatMap((h: any) => [
    ...(h.error ? [{ host: h.name, error: h.error }] : []),
    ...h.resources.filter((x: any) => x.status === 'failed').map((x: any) => ({ host: h.name, ...x })),
  ]);
  expect(r.code, `${ex.name} ${label}: ${JSON.stringify(bad, null, 1)}\n${r.stderr}`).toBe(0);
  console.log(`${ex.name} ${label}: ${j.changed} changed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return j;
}

/** Ids of the changed resources of every host, `host: id`. */
export function changed(j: any): string[] {
  return j.hosts.flatMap((h: any) => h.resources.filter((x: any) => x.status === 'changed').map((x: any) => `${h.name}: ${x.id}`));
}

/** Provision twice: the first converges, the second must change nothing. */
export async function provisionTwice(ex: Example, ...more: string[]): Promise<void> {
  await provision(ex, 'provision (1st)', ...more);
  const again = await provision(ex, 'provision (2nd)', ...more);
  expect(again.changed, JSON.stringify(changed(again))).toBe(0);
}

/** `keel deploy <env> --branch <b> --output json`; returns the report (the exit code is not checked). */
export async function deploy(ex: Example, branch: string, ...more: string[]): Promise<{ code: number; j: any; out: string }> {
  const started = Date.now();
  const r = await keel(ex, 'deploy', ex.env, '--branch', branch, '--output', 'json', ...more);
  let j: any = {};
  try {
    j = r.json();
  } catch {
    /* reported below with the output */
  }
  console.log(`${ex.name} deploy --branch ${branch}: exit ${r.code}, ${j.status ?? '?'}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { code: r.code, j, out: r.stdout + r.stderr };
}

/** 'open' when a TCP connection is accepted, 'refused' on RST, 'timeout' when packets are dropped. */
export function probe(host: string, port: number, ms = 2000): Promise<'open' | 'refused' | 'timeout'> {
  return new Promise((done) => {
    const s = connect({ host, port });
    const end = (r: 'open' | 'refused' | 'timeout') => {
      s.destroy();
      done(r);
    };
    s.setTimeout(ms, () => end('timeout'));
    s.once('connect', () => end('open'));
    s.once('error', (e: NodeJS.ErrnoException) => end(e.code === 'ECONNREFUSED' ? 'refused' : 'timeout'));
  });
}

/** GET http://127.0.0.1:<port><path> from this machine (a target's published HTTP port), with
 *  node:http rather than fetch: fetch does not let a caller name the Host header. */
export function httpGet(
  port: number,
  path = '/',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://127.0.0.1:${port}${path}: no answer in 10 s`)));
    req.on('error', fail);
    req.end();
  });
}

/** Wait until a check passes (or fail with what it last saw). */
export async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${ms / 1000} s waiting for: ${what}`);
}

/**
 * The secret canary on a running stack (issue 26.16): every process's command line on each
 * target (`ps -eo args`, sampled `samples` times) holds none of the vault's values; `expect`
 * names processes that must be in the sample (so the check sees what it claims to).
 */
export async function expectNoSecretsInProcesses(
  ex: Example,
  targets: string[],
  secrets: string[],
  expectSeen: Record<string, RegExp[]>,
  samples = 3,
): Promise<void> {
  for (const t of targets) {
    const lists: string[] = [];
    for (let i = 0; i < samples; i++) lists.push(await onTarget(ex, t, 'ps -eo args'));
    const all = lists.join('\n');
    for (const re of expectSeen[t] ?? []) expect(all, `${t}: a process matching ${re} runs`).toMatch(re);
    const hits = secrets.map((v) => all.split(v).length - 1);
    console.log(`${ex.name}: ${t}: ${lists[0]!.split('\n').length - 1} processes, vault values in their command lines: ${hits.join(', ')}`);
    expect(hits, `${t}: vault values in process command lines`).toEqual(secrets.map(() => 0));
  }
}
