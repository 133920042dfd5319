// What the engine needs from a connection to one host. src/ssh/ implements it with ssh2;
// tests may implement it in-process for fault injection.

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Bytes written to the remote command's stdin, then EOF. */
  stdin?: string | Buffer;
  /** Kill the channel and throw after this many ms. */
  timeoutMs?: number;
  /** Called with stdout chunks as they arrive (progress lines). */
  onStdout?: (chunk: string) => void;
}

export interface HostSession {
  readonly host: string;
  /**
   * Run a POSIX sh script on the host as the connection user, or through sudo when the
   * connection says `become`. The script travels on stdin, never on the command line.
   * One call = one exec channel = one round trip.
   */
  runScript(script: string, options?: Omit<ExecOptions, 'stdin'>): Promise<ExecResult>;
  /** Number of exec channels opened so far (the benchmark reports it). */
  readonly channelsOpened: number;
  close(): Promise<void>;
}
