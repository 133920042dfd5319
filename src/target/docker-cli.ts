// Runs the docker CLI (and keel's helper scripts) with argument arrays, never a shell string.
import { execFile } from 'node:child_process';
import { DockerCommandError, DockerEngineError, DockerMissingError } from './errors.js';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin, then EOF (secrets and keys travel here, not in argv). */
  stdin?: string;
  timeoutMs?: number;
  /** Called with stderr chunks as they arrive (progress of long scripts). */
  onStderr?: (chunk: string) => void;
}

/** Run a command; resolves with its exit code whatever it is. Rejects only if it cannot start. */
export function runCommand(file: string, args: string[], opts: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 0 }, (err, stdout, stderr) => {
      if (err?.code === 'ENOENT') {
        reject(new DockerMissingError([file, ...args], { cause: err }));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.onStderr) child.stderr?.on('data', (chunk: string) => opts.onStderr?.(chunk));
    // A command that exits without reading its stdin must not crash us with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.stdin ?? '');
  });
}

const ENGINE_DOWN = /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect/i;

/** Run `docker ARGS`; throws a typed error unless it exits 0. Returns stdout. */
export async function docker(args: string[], opts: RunOptions & { context?: string } = {}): Promise<string> {
  const r = await runCommand('docker', args, opts);
  if (r.code === 0) return r.stdout;
  if (ENGINE_DOWN.test(r.stderr)) throw new DockerEngineError(['docker', ...args], r.code, r.stderr);
  throw new DockerCommandError(['docker', ...args], r.code, r.stderr, opts.context);
}

/** `docker exec -i CONTAINER sh -c SCRIPT sh ARGS...` with input on stdin; resolves whatever the exit code. */
export async function dockerExecSh(container: string, script: string, opts: { stdin?: string; args?: string[]; user?: string } = {}): Promise<CommandResult> {
  const user = opts.user ? ['--user', opts.user] : [];
  const args = ['exec', '-i', ...user, container, 'sh', '-c', script, 'sh', ...(opts.args ?? [])];
  const r = await runCommand('docker', args, { stdin: opts.stdin ?? '' });
  if (r.code !== 0 && ENGINE_DOWN.test(r.stderr)) throw new DockerEngineError(['docker', ...args], r.code, r.stderr);
  return r;
}
