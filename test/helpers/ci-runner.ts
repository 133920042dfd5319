// A CI runner, as far as keel can tell: the commands of a GitHub Actions workflow or a GitLab
// CI job, read from the files themselves (so the recipe is what is tested), run the way a
// runner runs them: bash -eo pipefail, no terminal, no stdin, CI=true, a HOME with no SSH key
// or config, the secrets only as environment variables. What a runner does besides (checkout,
// setup-node, artifacts) is done here as it would be: a fresh clone per pipeline, and `npm ci`
// of the keel project is this checkout's keel (not on a registry) put where npm ci puts it.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

const keelBin = resolve(import.meta.dirname, '..', '..', 'bin', 'keel.js');

export interface PipelineRun {
  code: number;
  stdout: string;
  stderr: string;
  /** The JSON report the job wrote (deploy/keel-deploy.json), or null if empty or absent. */
  report: any;
  /** What ran, for messages. */
  commands: string[];
  /** The job's checkout. */
  ws: string;
  ms: number;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-C', cwd, '-c', 'advice.detachedHead=false', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** actions/checkout with fetch-depth: 0: every branch, the pushed one checked out at the sha. */
export function githubCheckout(origin: string, branch: string, sha: string): string {
  const ws = mkdtempSync(join(tmpdir(), 'keel-gh-ws-'));
  execFileSync('git', ['clone', '-q', '--no-checkout', `file://${origin}`, ws]);
  git(ws, 'checkout', '-q', '-B', branch, sha);
  return ws;
}

/** GitLab's checkout with GIT_DEPTH: 0: the pipeline's branch as origin/<branch> only, HEAD detached at the sha. */
export function gitlabCheckout(origin: string, branch: string, sha: string): string {
  const ws = mkdtempSync(join(tmpdir(), 'keel-gl-ws-'));
  execFileSync('git', ['init', '-q', ws]);
  git(ws, 'fetch', '-q', `file://${origin}`, `+refs/heads/${branch}:refs/remotes/origin/${branch}`);
  git(ws, 'checkout', '-q', '--detach', sha);
  return ws;
}

/** `npm ci` in the keel project: keel in node_modules/.bin, as the package would put it. */
export function installKeel(project: string): void {
  const bin = join(project, 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  if (!existsSync(join(bin, 'keel'))) symlinkSync(keelBin, join(bin, 'keel'));
}

/** The runner's own environment: nothing of this machine's but PATH (and an npm cache). */
export function runnerEnv(home: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: home, CI: 'true', LANG: 'C.UTF-8', ...extra };
}

/** ${{ expr }} of the workflow: `a.b`, 'literal', and `x || y`; anything else fails the test. */
function evaluate(text: string, context: Record<string, Record<string, string>>): string {
  return text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr: string) => {
    for (const part of expr.split('||').map((p) => p.trim())) {
      const lit = /^'([^']*)'$/.exec(part);
      if (lit) return lit[1]!;
      const m = /^(\w+)\.(\w+)$/.exec(part);
      if (!m || !(m[1]! in context)) throw new Error(`the workflow uses \${{ ${expr} }}, which this runner cannot evaluate`);
      const v = context[m[1]!]![m[2]!];
      if (v) return v;
    }
    return '';
  });
}

function runScript(script: string, cwd: string, env: NodeJS.ProcessEnv, commands: string[], onOutput?: (stderr: string) => void): Promise<PipelineRun> {
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onOutput?.(stderr);
    });
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr, report: null, commands, ws: '', ms: Date.now() - started }));
  });
}

function readReport(project: string): any {
  const file = join(project, 'keel-deploy.json');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  return text.trim() ? JSON.parse(text) : null;
}

export interface GithubRun {
  /** The workflow file in the workspace. */
  workflow: string;
  ws: string;
  event: 'push' | 'workflow_dispatch';
  inputs?: Record<string, string>;
  secrets: Record<string, string>;
  github: Record<string, string>;
  home: string;
  /** Called with the running job's stderr so far, as it grows (to wait for a line). */
  onOutput?: (stderr: string) => void;
}

/** The `deploy` job's run steps, after the runner's checkout and `npm ci`. */
export async function runGithubJob(o: GithubRun): Promise<PipelineRun> {
  const wf = parse(readFileSync(join(o.ws, o.workflow), 'utf8'));
  const job = wf.jobs.deploy;
  const context = { secrets: o.secrets, inputs: o.inputs ?? {}, github: o.github };
  const jobEnv = Object.fromEntries(Object.entries(job.env ?? {}).map(([k, v]) => [k, evaluate(String(v), context)]));
  const cwd = join(o.ws, job.defaults?.run?.['working-directory'] ?? '.');
  const ghEnv = {
    GITHUB_ACTIONS: 'true',
    GITHUB_EVENT_NAME: o.event,
    GITHUB_SHA: o.github.sha!,
    GITHUB_REF_NAME: o.github.ref_name!,
    GITHUB_ACTOR: o.github.actor!,
    GITHUB_RUN_ID: o.github.run_id!,
    GITHUB_REPOSITORY: o.github.repository!,
    GITHUB_SERVER_URL: 'https://github.com',
  };
  const out: PipelineRun = { code: 0, stdout: '', stderr: '', report: null, commands: [], ws: o.ws, ms: 0 };
  for (const step of job.steps as { run?: string; env?: Record<string, string>; uses?: string }[]) {
    if (!step.run) continue; // checkout, setup-node, upload-artifact: the runner's
    if (step.run.trim() === 'npm ci') {
      installKeel(cwd);
      continue;
    }
    const stepEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, evaluate(String(v), context)]));
    // GitHub gives an unset secret as an empty string.
    const env = runnerEnv(o.home, { ...ghEnv, ...jobEnv, ...stepEnv });
    const r = await runScript(step.run, cwd, env, [step.run], o.onOutput);
    Object.assign(out, { code: r.code, stdout: out.stdout + r.stdout, stderr: out.stderr + r.stderr, ms: out.ms + r.ms });
    out.commands.push(step.run);
    if (r.code !== 0) break;
  }
  out.report = readReport(cwd);
  return out;
}

export interface GitlabRun {
  ws: string;
  /** CI/CD variables (the secrets) and the pipeline's own (CI_COMMIT_SHA...). */
  variables: Record<string, string>;
  home: string;
  onOutput?: (stderr: string) => void;
}

/** The `deploy` job's script, after GitLab's checkout; `npm ci` of the keel project as above. */
export async function runGitlabJob(o: GitlabRun): Promise<PipelineRun> {
  const ci = parse(readFileSync(join(o.ws, '.gitlab-ci.yml'), 'utf8'));
  const job = ci.deploy;
  const lines = (job.script as string[]).map((l) => (l.trim() === 'npm ci' ? `ln -sfn ${keelBin} node_modules/.bin/keel` : l));
  const env = runnerEnv(o.home, {
    GITLAB_CI: 'true',
    ...Object.fromEntries(Object.entries(job.variables ?? {}).map(([k, v]) => [k, String(v)])),
    ...o.variables,
  });
  mkdirSync(join(o.ws, 'deploy', 'node_modules', '.bin'), { recursive: true });
  const r = await runScript(lines.join('\n'), o.ws, env, job.script, o.onOutput);
  return { ...r, ws: o.ws, report: readReport(join(o.ws, 'deploy')) };
}

/** keel run by hand on the runner (a step of one's own): `npx keel ARGS` in the keel project,
 *  with the runner's environment only; stdout and stderr apart. */
export function runKeelOnRunner(project: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  installKeel(project);
  return new Promise((done) => {
    const child = spawn(join(project, 'node_modules', '.bin', 'keel'), args, { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}
