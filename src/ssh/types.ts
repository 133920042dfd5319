// What the engine needs from a connection to one host. src/ssh/ implements it with ssh2 and
// one long-lived remote shell (remote-shell.ts); tests may implement it in-process.

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface RunScriptOptions {
  /** Stop the script (and the host's shell) and throw after this many ms. */
  timeoutMs?: number;
  /**
   * Called with each line of the script's stdout (without its newline) as soon as the line is
   * complete, in order, before runScript resolves: the controller follows a script while it
   * runs (its status lines). A last line without a newline comes when the script ends; a line
   * cut off by a lost connection never comes. The result's stdout still holds every line.
   */
  onStdoutLine?: (line: string) => void;
}

export interface HostSession {
  readonly host: string;
  /**
   * Run a POSIX sh script on the host as the connection user, or through sudo when the
   * connection says `become`. The script travels on stdin, never on the command line.
   * One call = one round trip; scripts of one session run one after the other, in the same
   * long-lived shell process on the host (the run lock records its pid).
   */
  runScript(script: string, options?: RunScriptOptions): Promise<ExecResult>;
  /** Scripts run so far (SSH round trips). */
  readonly roundTrips: number;
  /** True while a script runs. */
  readonly busy: boolean;
  /** True while the running script is still being sent: the host has not received all of it,
   *  so none of it runs yet (sh parses a script whole before running any of it). */
  readonly sending?: boolean;
  /**
   * Let go of the host without waiting (an interrupt): `last` runs on the host once the
   * script running now (if any) has finished, even after keel has exited. A script still being
   * sent is cut off instead (it never runs) and `last` runs at once.
   */
  abandon(last?: string): Promise<void>;
  close(): Promise<void>;
}
