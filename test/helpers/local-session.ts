// A HostSession that runs scripts in this machine's own /bin/sh: real shell, real files, no
// SSH. Engine tests use it to check what the compiled scripts do, fast; SSH itself is tested
// against real sshd in the integration tests.
import { spawn } from 'node:child_process';
import type { ExecResult, HostSession } from '../../src/ssh/types.js';

export class LocalSession implements HostSession {
  channelsOpened = 0;
  scripts: string[] = [];
  constructor(readonly host = 'local', private readonly env: Record<string, string> = {}) {}

  runScript(script: string): Promise<ExecResult> {
    this.channelsOpened++;
    this.scripts.push(script);
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-s'], { env: { ...process.env, ...this.env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal: signal ?? undefined, stdout, stderr }));
      child.stdin.end(script);
    });
  }

  async close(): Promise<void> {}
}
