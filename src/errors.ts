// Typed errors. Everything below the CLI throws one of these; src/cli/exit.ts alone turns
// them into messages and exit codes.

/** Where in a user's file a problem is (1-based line and column). */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
}

export function formatLocation(loc: SourceLocation): string {
  if (loc.line === undefined) return loc.file;
  return loc.column === undefined ? `${loc.file}:${loc.line}` : `${loc.file}:${loc.line}:${loc.column}`;
}

export interface ErrorOptions {
  cause?: unknown;
  /** What the user can do about it, printed after the message. */
  hint?: string;
}

/** Base class: a problem the user can fix. `exitCode` is what the CLI returns. */
export class KeelError extends Error {
  readonly exitCode: number = 1;
  readonly hint: string | undefined;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** Bad usage, configuration or validation: nothing was run (exit 1). */
export class ConfigError extends KeelError {
  override readonly exitCode = 1;
  constructor(
    message: string,
    readonly location?: SourceLocation,
    options?: ErrorOptions,
  ) {
    super(location ? `${formatLocation(location)}: ${message}` : message, options);
  }
}

/** Several configuration problems found in one pass, reported together (exit 1). */
export class ConfigErrors extends KeelError {
  override readonly exitCode = 1;
  constructor(readonly errors: ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

/** What a pass that collects problems reports: the one problem as itself, several together. */
export function oneOrMany(errors: ConfigError[]): ConfigError | ConfigErrors {
  return errors.length === 1 ? errors[0]! : new ConfigErrors(errors);
}

/** Throws the collected problems, if there are any (see oneOrMany). */
export function throwIfAny(errors: ConfigError[]): void {
  if (errors.length) throw oneOrMany(errors);
}

/** The problems a caught ConfigError or ConfigErrors holds; anything else is thrown again. */
export function configErrorsOf(err: unknown): ConfigError[] {
  if (err instanceof ConfigErrors) return err.errors;
  if (err instanceof ConfigError) return [err];
  throw err;
}

/** A host could not be reached or authenticated (exit 2 when it ends a run). */
export class HostUnreachableError extends KeelError {
  override readonly exitCode = 2;
  constructor(
    readonly host: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${host}: ${message}`, options);
  }
}

/** An internal invariant broke: this is a bug in keel, not the user's input. */
export class BugError extends KeelError {
  override readonly exitCode = 70;
  constructor(message: string, options?: { cause?: unknown }) {
    super(`internal error (a bug in keel, please report it): ${message}`, options);
  }
}

/** The last `n` lines of a command's output, trailing blank lines dropped. */
export function tailLines(text: string, n: number): string[] {
  return text.replace(/\s+$/, '').split('\n').slice(-n);
}

/** The last `n` lines of a command's output, each set off from keel's own words by `indent| `. */
export function lastLines(text: string, n: number, indent = '  '): string {
  return tailLines(text, n)
    .map((l) => `${indent}| ${l}`)
    .join('\n');
}

/** SIGINT/SIGTERM stopped a run. `lines` say what each host was doing (exit 130 or 143). */
export class InterruptedError extends KeelError {
  override readonly exitCode: number;
  constructor(
    readonly signal: 'SIGINT' | 'SIGTERM',
    readonly lines: string[],
  ) {
    super(`interrupted (${signal})${lines.length ? ':\n' + lines.map((l) => `  ${l}`).join('\n') : ''}`);
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}

/** Another run holds the lock of one or more hosts: nothing was changed (exit 2). */
export class LockedError extends KeelError {
  override readonly exitCode = 2;
}
