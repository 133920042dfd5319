// The benchmark still runs end to end (keel only, 1 host, a few resources) and writes a result
// of the documented shape. No time is asserted: the benchmark is a program, not a timed test.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');

describe('npm run bench -- --quick --tools keel', () => {
  let dir: string;
  let result: any;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keel-bench-smoke-'));
    // The bench runs keel's real CLI (bin/keel.js → dist/keel/), so build first, as `npm run bench` does.
    await run(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root });
    const out = join(dir, 'result.json');
    await run(process.execPath, ['dist/bench/main.js', '--quick', '--tools', 'keel', '--repeats', '1', '--out', out], {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
    });
    result = JSON.parse(await readFile(out, 'utf8'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the scenarios for 1 host with keel figures and null for the tools not run', () => {
    expect(result.schema).toBe('keel-bench/1');
    expect(result.versions.node).toBe(process.version);
    expect(typeof result.machine.cpus).toBe('number');
    expect(result.scenarios.map((s: any) => s.name)).toEqual(['first', 'noop', 'change5']);
    for (const s of result.scenarios) {
      expect(s).toMatchObject({ hosts: 1, resources: 20, ansible_s: null, mitogen_s: null, ratio_ansible: null, ratio_mitogen: null });
      expect(typeof s.keel_s).toBe('number');
      expect(s.keel_s).toBeGreaterThan(0);
      expect(Number.isInteger(s.keel_round_trips_per_host)).toBe(true);
      expect(s.keel_peak_rss_mb === null || s.keel_peak_rss_mb > 0).toBe(true);
    }
    expect(result.scenarios.find((s: any) => s.name === 'noop').keel_round_trips_per_host).toBe(1);
    expect(result.errors).toEqual([]);
  });

  it('keeps the long parts out of --quick, and still reports the controller CPU, limits and load', () => {
    expect(result.vault).toBeNull();
    expect(result.fake_scale).toBeNull();
    expect(result.breakdown).toBeNull();
    for (const s of result.scenarios) expect(s.keel_cpu_s === null || s.keel_cpu_s > 0).toBe(true);
    expect(result.controller_cpu === null || Array.isArray(result.controller_cpu.rows)).toBe(true);
    expect(typeof result.limits.nofile_soft).toBe('number');
    expect(result.load.load1.samples).toBeGreaterThan(0);
    // --quick keeps the scaling figure to 3 pairs (each may wait 30 s for a quiet machine).
    if (result.scaling) {
      expect(result.scaling.pairs).toBeLessThanOrEqual(3);
      if (result.scaling.pairs) expect(result.scaling.paired_growth_quartiles_pct).toHaveLength(2);
      // The same pairs on fake endpoints that answer after the target's own recorded probe time.
      const own = result.scaling.own_cpu;
      expect(own).toMatchObject({ hosts: result.scaling.hosts, recorded: 3 });
      expect(own.pairs).toBeLessThanOrEqual(3);
      for (const ms of own.host_probe_ms) expect(ms).toBeGreaterThan(0);
      expect(own.runs[0].length + own.runs[1].length).toBeGreaterThan(0);
    }
    // keel's overhead is timed per framed script on the host: lock + probe, apply, release.
    if (result.overhead) for (const r of result.overhead.runs) expect(r.execs).toBe(3);
  });

  it('evaluates the targets and writes the table beside the JSON', async () => {
    for (const t of result.targets) {
      expect(typeof t.name).toBe('string');
      expect([true, false, null]).toContain(t.pass);
    }
    expect(existsSync(join(dir, 'result.md'))).toBe(true);
    expect(await readFile(join(dir, 'result.md'), 'utf8')).toContain('| noop | 1 | 20 |');
  });

  it('removes every container it started', async () => {
    const { stdout } = await run('docker', ['ps', '-a', '-q', '--filter', `label=keel.bench=${result.pid}`]);
    expect(stdout.trim()).toBe('');
  });
});
