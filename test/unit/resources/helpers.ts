// Shared fixtures for resource type tests: decide from facts, syntax-check generated shell with
// `sh -n`, and run harmless probes for real against this machine.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Decision, Facts, ProbeItem, ResourceType } from '../../../src/resources/types.js';
import { parseFacts } from '../../../src/resources/types.js';
import type { Shell } from '../../../src/shell/quote.js';

/** Values a role author could write that break naive shell building. */
export const NASTY = [`it's`, 'two words', '$(touch /tmp/keel-pwned)', '`id`', 'a\nb', '"dq" \\ back', 'ünï'];

export const ctx = { wantDiff: false };

export function norm<P>(t: ResourceType<P>, p: P): P {
  return t.normalize ? t.normalize(p) : p;
}

export function decide<P>(t: ResourceType<P>, p: P, f: Facts = {}): Decision {
  return t.decide(norm(t, p), f, ctx);
}

/** A change's commands as text (the engine joins them the same way). */
export function commandsOf(d: Decision): string[] {
  if (d.kind !== 'change') throw new Error(`expected a change, got ok: ${d.reason}`);
  return d.commands.map((c) => c.text);
}

export function expectOk(d: Decision): void {
  expect(d.kind).toBe('ok');
  expect(d.reason.length).toBeGreaterThan(0);
  expect((d as { commands?: unknown }).commands).toBeUndefined();
}

/** `sh -n`: the text parses as POSIX sh (dash on Debian). */
export function expectShellSyntax(shell: string | Shell): void {
  const script = String(shell);
  const dir = mkdtempSync(join(tmpdir(), 'keel-shn-'));
  try {
    const f = join(dir, 's.sh');
    writeFileSync(f, script + '\n');
    const r = spawnSync('sh', ['-n', f], { encoding: 'utf8' });
    expect(r.stderr, script).toBe('');
    expect(r.status, script).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run shell for real (probes are read-only; commands only on temp dirs). */
export function runSh(shell: string | Shell, env: Record<string, string> = {}): { stdout: string; status: number | null; stderr: string } {
  const r = spawnSync('sh', ['-c', String(shell)], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { stdout: r.stdout, status: r.status, stderr: r.stderr };
}

/** Commands as the engine runs them: one subshell, set -e. */
export function applySh(commands: readonly (string | Shell)[], runDir: string): { status: number | null; stderr: string; stdout: string } {
  return runSh(`(\nset -e\n${commands.map(String).join('\n')}\n)`, { KEEL_RUN_DIR: runDir });
}

export function items<P>(t: ResourceType<P>, ps: P[]): ProbeItem<P>[] {
  return ps.map((p, n) => ({ key: `k${n}`, params: norm(t, p) }));
}

/** Probe for real on this machine and parse, as the engine does. */
export function probeHere<P>(t: ResourceType<P>, ps: P[]): Map<string, Facts> {
  const its = items(t, ps);
  const script = `set +e\n${t.probeStart?.(its, ctx) ?? ''}\n${t.probe(its, ctx)}`;
  const out = spawnSync('sh', ['-c', script], { encoding: 'utf8' }).stdout;
  return t.parse ? t.parse(out, its) : parseFacts(out);
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'keel-res-'));
}
