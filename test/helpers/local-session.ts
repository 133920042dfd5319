// A HostSession that runs scripts in this machine's own /bin/sh: real shell, real files, no
// SSH. Engine tests use it to check what the compiled scripts do, fast; SSH itself is tested
// against real sshd in the integration tests.
import { spawn } from 'node:child_process';
import type { ExecResult, HostSession, RunScriptOptions } from '../../src/ssh/types.js';
import type { Host } from '../../src/inventory/types.js';

export class LocalSession implements HostSession {
  roundTrips = 0;
  busy = false;
  scripts: string[] = [];
  constructor(
    readonly host = 'local',
    private readonly env: Record<string, string> = {},
  ) {}

  async runScript(script: string, options: RunScriptOptions = {}): Promise<ExecResult> {
    this.roundTrips++;
    this.scripts.push(script);
    this.busy = true;
    try {
      return await runSh(script, { ...process.env, ...this.env }, options.onStdoutLine);
    } finally {
      this.busy = false;
    }
  }

  async abandon(last?: string): Promise<void> {
    if (last) await runSh(last, { ...process.env, ...this.env });
  }

  async close(): Promise<void> {}
}

function runSh(script: string, env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-s'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let passed = 0;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      stdout += d;
      // Like RemoteShell: each complete line as it arrives, the last one when the script ends.
      for (let nl = stdout.indexOf('\n', passed); onLine && nl >= 0; nl = stdout.indexOf('\n', passed)) {
        onLine(stdout.slice(passed, nl));
        passed = nl + 1;
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (onLine && passed < stdout.length) onLine(stdout.slice(passed));
      resolve({ code, signal: signal ?? undefined, stdout, stderr });
    });
    child.stdin.end(script);
  });
}

/** The connection of a host the engine tests run on this machine (LocalSession ignores it). */
export function localConnection(): Host['connection'] {
  return {
    address: '127.0.0.1',
    port: 22,
    user: 'root',
    keyFiles: [],
    agent: false,
    jump: [],
    connectTimeoutMs: 1000,
    become: false,
    becomeUser: 'root',
  };
}
