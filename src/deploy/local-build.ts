// deploy_local_build: commands run on the controller (the CI runner, a laptop) before anything
// is shipped: a front-end built with npm, so that the hosts never need Node. They run in a
// clean copy of the commit (never the working tree: what is shipped is the commit plus what
// the commands made from it), in the app's directory, with the release they build for in
// KEEL_RELEASE, KEEL_SHA, KEEL_BRANCH and KEEL_ENV (seed 000's set_version). The paths listed
// in deploy_local_build_outputs are then added to the release's archive (tar.ts).
import { spawn } from 'node:child_process';
import { lstat, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InterruptedError, KeelError, lastLines } from '../errors.js';
import type { StepRecord } from './phases.js';
import { archive, exportTree, type Source } from './source.js';
import type { TarEntry } from './tar.js';

export interface LocalBuildSettings {
  commands: string[];
  /** Relative to the app's directory, without a trailing slash. */
  outputs: string[];
}

export interface LocalBuildReport {
  steps: StepRecord[];
  outputs: { path: string; files: number; bytes: number }[];
}

/** A build command failed, or did not make what it should: nothing was shipped (exit 2). */
export class LocalBuildError extends KeelError {
  override readonly exitCode = 2;
}

/** keel's own secrets (and the SSH agent, which would hand out the deploy key): a build
 *  command, and every install script `npm ci` runs, never sees them. */
export const WITHHELD_FROM_BUILD = [
  'KEEL_AGE_IDENTITY',
  'KEEL_AGE_IDENTITY_FILE',
  'KEEL_VAULT_PASSWORD',
  'KEEL_VAULT_NEW_PASSWORD',
  'KEEL_SSH_PRIVATE_KEY',
  'KEEL_SSH_KEY_PASSPHRASE',
  'SSH_AUTH_SOCK',
];

/** The last bytes of a command's output kept in the report (as for the hosts' steps). */
const KEEP_OUTPUT = 4000;

export interface LocalBuildOptions {
  env: string;
  release: string;
  mask: (s: string) => string;
  /** Each step when it ends. */
  onStep?: (step: StepRecord) => void;
  /** Each line a command writes, as it comes (-v). */
  onLine?: (step: string, line: string) => void;
  signal?: AbortSignal;
}

/** What goes to the hosts for a local checkout: git's archive of the commit, with the local
 *  build's outputs added when there is one (then its report too). */
export async function releaseArchive(src: Source, s: LocalBuildSettings, o: LocalBuildOptions): Promise<{ archive: Buffer; report?: LocalBuildReport }> {
  if (!s.commands.length) return { archive: await archive(src) };
  const built = await localBuild(src, s, o);
  return { archive: await archive(src, built.entries), report: built.report };
}

export async function localBuild(src: Source, s: LocalBuildSettings, o: LocalBuildOptions): Promise<{ entries: TarEntry[]; report: LocalBuildReport }> {
  const dir = await mkdtemp(join(tmpdir(), 'keel-build-'));
  const report: LocalBuildReport = { steps: [], outputs: [] };
  const record = (st: StepRecord) => {
    report.steps.push(st);
    o.onStep?.(st);
  };
  try {
    await exportTree(src, dir);
    const appDir = join(dir, 'tree', src.subdir);
    const env = buildEnv(src, o);
    for (const [i, command] of s.commands.entries()) {
      const name = `build-${i + 1}`;
      const started = Date.now();
      const r = await runCommand(command, appDir, env, (line) => o.onLine?.(name, o.mask(line)), o.signal);
      const output = o.mask(r.output).slice(-KEEP_OUTPUT);
      if (o.signal?.aborted) {
        throw new InterruptedError(o.signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT', [
          `the local build was stopped at \`${command}\`: nothing was shipped, no host was touched`,
        ]);
      }
      record({ phase: 'local-build', name, status: r.code === 0 ? 'ok' : 'failed', durationMs: Date.now() - started, code: r.code, output });
      if (r.code !== 0) {
        throw new LocalBuildError(
          `local build failed at deploy_local_build[${i}] \`${command}\` (exit ${r.code}) in ${src.subdir || 'the repository root'} of ` +
            `${src.sha.slice(0, 12)}:\n${lastLines(output, 12)}\nnothing was shipped, no host was touched`,
        );
      }
    }
    const entries: TarEntry[] = [];
    for (const path of s.outputs.map((x) => x.replace(/\/+$/, ''))) {
      const found = await collect(appDir, path, s.commands.length);
      entries.push(...found);
      const files = found.filter((e) => e.type === 'file');
      report.outputs.push({ path, files: files.length, bytes: files.reduce((n, e) => n + (e.data?.length ?? 0), 0) });
    }
    const said = report.outputs.map((x) => `${x.path}: ${x.files} file${x.files === 1 ? '' : 's'}, ${x.bytes} bytes`).join('; ');
    record({ phase: 'local-build', name: 'outputs', status: 'ok', output: said ? `shipped in the release: ${said}` : 'no outputs listed' });
    // A path listed twice (or a directory and a file in it) is one entry.
    return { entries: [...new Map(entries.map((e) => [e.path, e])).values()], report };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function buildEnv(src: Source, o: LocalBuildOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of WITHHELD_FROM_BUILD) delete env[k];
  return { ...env, KEEL_RELEASE: o.release, KEEL_SHA: src.sha, KEEL_BRANCH: src.branch, KEEL_ENV: o.env };
}

/** `sh -c command` in `cwd`, no stdin; its output (stdout and stderr, in order) and exit code.
 *  An interrupt stops the command and what it started (its process group). */
function runCommand(
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  onLine: (l: string) => void,
  signal?: AbortSignal,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    let partial = '';
    const take = (d: Buffer) => {
      const text = d.toString('utf8');
      output = (output + text).slice(-1024 * 1024);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const stop = () => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    };
    signal?.addEventListener('abort', stop, { once: true });
    child.on('error', (err) => {
      signal?.removeEventListener('abort', stop);
      reject(new LocalBuildError(`could not start sh for the local build: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', stop);
      if (partial) onLine(partial);
      resolve({ code: code ?? 128 + (sig === 'SIGKILL' ? 9 : 15), output });
    });
  });
}

/** An output path's files and directories, read from the build's copy. */
async function collect(appDir: string, path: string, commands: number): Promise<TarEntry[]> {
  const full = join(appDir, path);
  const st = await lstat(full).catch(() => null);
  if (!st) {
    throw new LocalBuildError(
      `deploy_local_build_outputs: ${path} was not made: it does not exist in the app's directory after the ${commands} command(s) of deploy_local_build`,
      { hint: 'check the path (relative to the app directory: deploy_subdir) and where the build writes' },
    );
  }
  if (st.isSymbolicLink()) throw new LocalBuildError(`deploy_local_build_outputs: ${path} is a symbolic link: outputs must be files and directories`);
  if (st.isFile()) return [{ path, type: 'file', executable: (st.mode & 0o111) !== 0, data: await readFile(full) }];
  if (!st.isDirectory()) throw new LocalBuildError(`deploy_local_build_outputs: ${path} is neither a file nor a directory`);
  const out: TarEntry[] = [{ path, type: 'dir' }];
  for (const name of (await readdir(full)).sort()) out.push(...(await collect(appDir, `${path}/${name}`, commands)));
  return out;
}
