// Every run writes a JSON-lines log under .keel/logs/, through the redactor.
import { mkdirSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Redactor } from './redact.js';

export class RunLog {
  private fd: number | null;
  readonly file: string;

  constructor(root: string, command: string, env: string, private readonly redactor: Redactor) {
    const dir = join(root, '.keel', 'logs');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    this.file = join(dir, `${stamp}-${command}-${env}.jsonl`);
    this.fd = openSync(this.file, 'a', 0o600);
  }

  write(event: string, data: Record<string, unknown> = {}): void {
    if (this.fd === null) return;
    const line = JSON.stringify(this.redactor.maskValue({ time: new Date().toISOString(), event, ...data }));
    writeSync(this.fd, line + '\n');
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
