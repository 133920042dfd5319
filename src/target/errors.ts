// Errors of the local Docker targets. Each says which command failed, how, and the last
// lines of its stderr, so the user can fix the engine or the image build.
import { KeelError, lastLines } from '../errors.js';

/** A docker (or helper script) command exited non-zero. */
export class DockerCommandError extends KeelError {
  constructor(
    readonly command: string[],
    readonly code: number | null,
    readonly stderr: string,
    context?: string,
  ) {
    super(`${context ? context + ': ' : ''}\`${command.join(' ')}\` exited with ${code ?? 'no status'}` + (stderr.trim() ? `\n${lastLines(stderr, 10)}` : ''));
  }
}

/** The docker CLI is not installed (or not on PATH). */
export class DockerMissingError extends KeelError {
  override readonly hint = 'install Docker (as root: sh scripts/ensure-docker.sh installs docker.io)';
  constructor(
    readonly command: string[],
    options?: { cause?: unknown; stderr?: string },
  ) {
    super(
      `\`${command[0]}\` was not found on PATH: the docker CLI is not installed` + (options?.stderr?.trim() ? `\n${lastLines(options.stderr, 10)}` : ''),
      options,
    );
  }
}

/** The docker CLI is there but no engine answers. */
export class DockerEngineError extends DockerCommandError {
  override readonly hint = 'start the engine (as root: sh scripts/ensure-docker.sh starts dockerd)';
  constructor(command: string[], code: number | null, stderr: string) {
    super(command, code, stderr, 'no Docker engine answers');
  }
}

/** scripts/ensure-docker.sh or scripts/build-target-image.sh failed. */
export class TargetImageError extends DockerCommandError {}

/** A target container started but systemd or sshd did not come up in time. */
export class TargetNotReadyError extends KeelError {
  constructor(
    readonly container: string,
    what: string,
    readonly detail: string,
  ) {
    super(`target ${container}: ${what}` + (detail.trim() ? `\n${lastLines(detail, 10)}` : ''));
  }
}
