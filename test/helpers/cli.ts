// Run keel's real CLI in-process and capture what it prints (through the same redactor).
import { main } from '../../src/cli/main.js';
import { Redactor } from '../../src/report/redact.js';
import type { Output } from '../../src/cli/output.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

export async function runKeel(args: string[], opts: { root: string; interactive?: boolean }): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const redactor = new Redactor();
  const out: Output = {
    redactor,
    line: (t) => (stdout += redactor.mask(t) + '\n'),
    warn: (t) => (stderr += redactor.mask(t) + '\n'),
    json: (v) => (stdout += JSON.stringify(redactor.maskValue(v), null, 2) + '\n'),
    isTTY: false,
  };
  const code = await main(['node', 'keel', ...args], { root: opts.root, out, interactive: opts.interactive ?? false });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}
