// The bench's fake SSH endpoints (bench/replay.ts, bench/fake-endpoint.ts): they cut keel's
// framed scripts out of the one `sh -s` stream, answer the lock + probe from a recording with
// the nonces substituted, and the release with nothing; keel's own session reads the answers.
// Also the bench's option defaults for the long parts and the new PASS/MISS lines.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireSnippet, newLockOwner, parseLockReport, releaseScript } from '../../src/engine/lock.js';
import { buildProbeScript, parseProbe } from '../../src/engine/script.js';
import { newNonce } from '../../src/engine/script-parts.js';
import { connect } from '../../src/ssh/connect.js';
import { frame } from '../../src/ssh/remote-shell.js';
import { startFakeEndpoints, type FakeEndpoints } from '../../bench/fake-endpoint.js';
import { keyPair } from '../../bench/fake-hosts.js';
import { parseOptions } from '../../bench/options.js';
import { nofileFor, noopProblems } from '../../bench/phases.js';
import { answer, framedAnswer, takeFrames, type ProbeRecording } from '../../bench/replay.js';
import { newTargets, type BenchResult } from '../../bench/report.js';
import type { VaultBenchModeResult } from '../../bench/vault.js';
import { publicLine, tempDir, testConnection } from '../fixtures/ssh/server.js';

const RECORDED = '@@keel-0123456789ab';
const recording: ProbeRecording = {
  nonce: RECORDED,
  stdout: `${RECORDED} L acquired\n\n${RECORDED} S file\n3\tsha256\tabc\n\n${RECORDED} P\n\n${RECORDED} E\n`,
  stderr: '',
  code: 0,
  resources: 0,
  hostMs: 5,
  source: 'test',
};

function probe(): { nonce: string; script: string; runId: string } {
  const nonce = newNonce();
  const owner = newLockOwner('bench test');
  return { nonce, runId: owner.run_id, script: buildProbeScript([], nonce, { wantDiff: false }, acquireSnippet(nonce, owner)) };
}

describe('bench replay: frames', () => {
  it('cuts the bootstrap and frames out of the stream, whatever the chunking, and classifies them', () => {
    const p = probe();
    const rel = releaseScript(p.runId);
    const f1 = '@@keel-aaaaaaaaaaaa';
    const f2 = '@@keel-bbbbbbbbbbbb';
    const f3 = '@@keel-cccccccccccc';
    const stream = "trap '' HUP PIPE\n" + frame(p.script, f1) + frame(rel, f2) + frame('echo apply\n', f3);
    for (const cut of [1, 7, 100, stream.length]) {
      const got: ReturnType<typeof takeFrames>['frames'] = [];
      let buf = '';
      for (let i = 0; i < stream.length; i += cut) {
        buf += stream.slice(i, i + cut);
        const r = takeFrames(buf);
        got.push(...r.frames);
        buf = r.rest;
      }
      expect(buf).toBe('');
      expect(got.map((f) => [f.frameNonce, f.kind])).toEqual([
        [f1, 'probe'],
        [f2, 'release'],
        [f3, 'unknown'],
      ]);
      expect(got[0]!.scriptNonce).toBe(p.nonce);
      expect(got[0]!.script).toBe(p.script);
      expect(got[2]!.script).toBe('echo apply\n');
    }
  });

  it("answers a probe with the recording under the script's own nonce, and ends the frame like sh would", () => {
    const p = probe();
    const [f] = takeFrames(frame(p.script, '@@keel-dddddddddddd')).frames;
    const a = answer(f!, recording);
    expect(a.stdout).not.toContain(RECORDED);
    expect(parseLockReport(a.stdout, p.nonce)).toEqual({ kind: 'acquired' });
    expect(parseProbe(a.stdout, p.nonce, []).complete).toBe(true);
    const out = framedAnswer(f!, a);
    expect(out.stdout.endsWith('\n@@keel-dddddddddddd X 0\n')).toBe(true);
    expect(out.stderr).toBe('\n@@keel-dddddddddddd X\n');
    const bad = takeFrames(frame('echo apply\n', '@@keel-eeeeeeeeeeee')).frames[0]!;
    expect(answer(bad, recording).code).toBe(125);
  });
});

describe("bench fake endpoint over keel's own session", () => {
  let eps: FakeEndpoints | undefined;
  afterEach(async () => {
    await eps?.close();
    eps = undefined;
  });

  it('logs in with the key, runs sh -s, answers probe and release, and counts them', async () => {
    const dir = await tempDir();
    const host = keyPair();
    const user = keyPair();
    const keyFile = join(dir, 'id');
    await writeFile(keyFile, user.private, { mode: 0o600 });
    eps = await startFakeEndpoints({ count: 2, hostKey: host.private, userKey: user.public, recording, delayMs: 0 });
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, eps.ports.map((p) => `[127.0.0.1]:${p} ${publicLine(host.private)}\n`).join(''));
    const session = await connect({
      hostName: 'f1',
      connection: testConnection(eps.ports[1]!, keyFile, { user: 'root' }),
      knownHostsFile,
      acceptNewHostKeys: false,
    });
    try {
      const p = probe();
      const out = await session.runScript(p.script);
      expect(out.code).toBe(0);
      expect(parseLockReport(out.stdout, p.nonce)).toEqual({ kind: 'acquired' });
      expect(parseProbe(out.stdout, p.nonce, []).complete).toBe(true);
      const rel = await session.runScript(releaseScript(p.runId));
      expect(rel).toMatchObject({ code: 0, stdout: '', stderr: '' });
      const other = await session.runScript('echo not a no-op\n');
      expect(other.code).toBe(125);
    } finally {
      await session.close();
    }
    expect(eps.stats()).toMatchObject({ connections: 1, execs: 1, probes: 1, releases: 1, unknown: 1, authFailures: 0 });
  });
});

describe('bench options and targets', () => {
  it('keeps --quick free of the long parts unless asked for', () => {
    expect(parseOptions(['--quick'])).toMatchObject({ vault: false, scale: [], breakdown: false, hosts: [1] });
    expect(parseOptions([])).toMatchObject({ vault: true, vaultRuns: 50, scale: [100, 300, 1000], breakdown: true, fakeWorkers: 4, fakeDelayMs: null });
    expect(parseOptions(['--quick', '--vault-runs', '3', '--scale', '30,10'])).toMatchObject({ vault: true, vaultRuns: 3, scale: [10, 30] });
    expect(parseOptions(['--no-scale', '--no-vault', '--no-breakdown'])).toMatchObject({ vault: false, scale: [], breakdown: false });
  });

  it('counts a run on fake endpoints as a no-op only when each host got one probe and one release, and nothing else', () => {
    const counts = (o: Partial<Awaited<ReturnType<FakeEndpoints['stats']>>> = {}) => ({
      connections: 0,
      open: 0,
      authFailures: 0,
      execs: 0,
      probes: 0,
      releases: 0,
      unknown: 0,
      peakChannels: 0,
      errors: [],
      workersRssMb: [],
      ...o,
    });
    const run = { seconds: 0.2, changed: 0, failed: 0, unreachable: 0 };
    const before = counts({ probes: 4, releases: 4, errors: ['old'] });
    expect(noopProblems(run, 2, before, counts({ probes: 6, releases: 6, errors: ['old'] }))).toEqual([]);
    expect(noopProblems(run, 2, before, counts({ probes: 5, releases: 6, errors: ['old'] }))).toEqual([
      'the endpoints answered 1 probes and 2 releases for 2 hosts',
    ]);
    expect(noopProblems(run, 2, before, counts({ probes: 6, releases: 6, unknown: 1, errors: ['old'] }))).toEqual(['1 unexpected scripts, 0 failed logins']);
    expect(noopProblems(run, 2, before, counts({ probes: 6, releases: 6, errors: ['old', 'channel: reset'] }))).toEqual(['endpoint errors: channel: reset']);
    expect(noopProblems({ ...run, changed: 1 }, 2, before, counts({ probes: 6, releases: 6, errors: ['old'] }))).toEqual([
      'changed 1, failed 0, unreachable 0',
    ]);
  });

  it('raises ulimit -n only when the soft limit is too low for the host count', () => {
    expect(nofileFor(1000, 20000, 20000)).toBeUndefined();
    expect(nofileFor(1000, 1024, 1048576)).toBe(65536);
    expect(nofileFor(1000, 1024, 4096)).toBe(4096);
  });

  it('marks the vault, CPU and 1,000-host targets PASS or MISS with the figures', () => {
    const mode = (name: VaultBenchModeResult['mode'], median: number): VaultBenchModeResult => ({
      mode: name,
      runs: 50,
      failures: 0,
      wallMs: { min: median, median, p90: median, max: median },
      userCpuMs: { min: 1, median: 1, p90: 1, max: 1 },
      systemCpuMs: { min: 1, median: 1, p90: 1, max: 1 },
      peakRssMiB: { min: 1, median: 1, p90: 1, max: 1 },
    });
    const r = {
      scenarios: [{ resources: 200 }],
      options: { scale: [100, 1000] },
      limits: { nofile_soft: 20000, nofile_raised_to: null },
      vault: {
        provision: { command: 'keel provision', runsPerMode: 50, modes: [mode('none', 1000), mode('unlocked', 1080), mode('identity', 1150)] },
      },
      controller_cpu: {
        rows: [
          { source: 'fake endpoints', hosts: 100, resources: 200, cpu_s: 3, cpu_ms_per_host: 30 },
          { source: 'fake endpoints', hosts: 1000, resources: 200, cpu_s: 16, cpu_ms_per_host: 16 },
        ],
        marginal_ms_per_host_containers: 20,
        marginal_ms_per_host_fake: 14.4,
      },
      fake_scale: {
        rows: [
          {
            hosts: 1000,
            wall_s: 31,
            cpu_s: 16,
            peak_rss_mb: 500,
            peak_fds: 1020,
            errors: [],
            unreachable: 0,
            failed: 0,
            endpoint: { probes: 1000, releases: 1000, peak_channels: 1000 },
          },
        ],
      },
    } as unknown as BenchResult;
    const t = newTargets(r);
    const by = (s: string) => t.find((x) => x.name.includes(s))!;
    expect(by('unlocked')).toMatchObject({ pass: true });
    expect(by('identity')).toMatchObject({ pass: false, note: '0.05 s over' });
    expect(by('controller CPU')).toMatchObject({ pass: true });
    expect(by('1,000 hosts (fake')).toMatchObject({ pass: false, note: '1 s over' });
    expect(by('peak memory')).toMatchObject({ pass: true });
    expect(by('limit hit')).toMatchObject({ pass: true });
  });
});
