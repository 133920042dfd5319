// The fake endpoints' parent side: fork worker processes (bench/fake-endpoint.ts), each
// serving its share of the endpoints on 127.0.0.1, write the key and known_hosts keel uses to
// reach them, and collect their counters. The keel process being measured only talks to them.
import { fork, type ChildProcess } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { EndpointStats, WorkerConfig } from './fake-endpoint.js';
import type { ProbeRecording } from './replay.js';
import type { BenchHost } from './targets.js';

export interface FakeHostsOptions {
  count: number;
  workers: number;
  recording: ProbeRecording;
  delayMs: number;
  /** Where the client key and known_hosts go. */
  dir: string;
}

export interface AggregateStats extends Omit<EndpointStats, 'errors'> {
  errors: string[];
  workersRssMb: number[];
}

interface Worker {
  child: ChildProcess;
  ports: number[];
}

export class FakeHosts {
  private constructor(
    private readonly workers: Worker[],
    /** Endpoints in an order that spreads any prefix of them over every worker. */
    readonly hosts: BenchHost[],
    readonly keyFile: string,
    readonly knownHostsFile: string,
  ) {}

  static async start(o: FakeHostsOptions): Promise<FakeHosts> {
    const hostKey = keyPair();
    const user = keyPair();
    const keyFile = join(o.dir, 'id_fake_ed25519');
    await writeFile(keyFile, user.private, { mode: 0o600 });
    await chmod(keyFile, 0o600);
    const script = new URL('./fake-endpoint.js', import.meta.url);
    const workers: Worker[] = [];
    try {
      for (let w = 0; w < o.workers; w++) {
        const count = Math.floor(o.count / o.workers) + (w < o.count % o.workers ? 1 : 0);
        const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const worker: Worker = { child, ports: [] };
        workers.push(worker);
        const cfg: WorkerConfig = { count, hostKey: hostKey.private, userKey: user.public, recording: o.recording, delayMs: o.delayMs };
        worker.ports = await request<{ type: 'ports'; ports: number[] }>(child, { type: 'start', config: cfg }, 'ports', 120_000).then((m) => m.ports);
      }
    } catch (err) {
      for (const w of workers) w.child.kill('SIGKILL');
      throw err;
    }
    // Interleave: endpoint i is served by worker i % workers.
    const ports: number[] = [];
    for (let i = 0; ports.length < o.count; i++) for (const w of workers) if (i < w.ports.length) ports.push(w.ports[i]!);
    const hosts = ports.map((port, i) => ({ name: `f${String(i + 1).padStart(4, '0')}`, container: '', port }));
    const knownHostsFile = join(o.dir, 'known_hosts_fake');
    const keyLine = publicLine(hostKey.private);
    await writeFile(knownHostsFile, ports.map((p) => `[127.0.0.1]:${p} ${keyLine}\n`).join(''));
    return new FakeHosts(workers, hosts, keyFile, knownHostsFile);
  }

  get pids(): number[] {
    return this.workers.map((w) => w.child.pid!).filter(Boolean);
  }

  async stats(): Promise<AggregateStats> {
    const all = await Promise.all(
      this.workers.map((w) => request<{ type: 'stats'; stats: EndpointStats | null; rssMb: number }>(w.child, { type: 'stats' }, 'stats', 30_000)),
    );
    const sum = (k: keyof Omit<EndpointStats, 'errors'>) => all.reduce((a, m) => a + (m.stats?.[k] ?? 0), 0);
    return {
      connections: sum('connections'),
      open: sum('open'),
      authFailures: sum('authFailures'),
      execs: sum('execs'),
      probes: sum('probes'),
      releases: sum('releases'),
      unknown: sum('unknown'),
      peakChannels: sum('peakChannels'),
      errors: all.flatMap((m) => m.stats?.errors ?? []).slice(0, 20),
      workersRssMb: all.map((m) => Math.round(m.rssMb)),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((res) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return res();
            const timer = setTimeout(() => {
              w.child.kill('SIGKILL');
              res();
            }, 5000);
            w.child.once('exit', () => {
              clearTimeout(timer);
              res();
            });
            w.child.send({ type: 'stop' });
          }),
      ),
    );
  }

  /** On a signal: synchronous. */
  killNow(): void {
    for (const w of this.workers) w.child.kill('SIGKILL');
  }
}

function request<T extends { type: string }>(child: ChildProcess, msg: unknown, want: string, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`fake endpoint worker ${child.pid}: no ${want} answer in ${ms / 1000} s`)), ms);
    const onMsg = (m: { type: string; message?: string }) => {
      if (m.type === 'error') done(new Error(`fake endpoint worker ${child.pid}: ${m.message}`));
      else if (m.type === want) done(undefined, m as T);
    };
    const onExit = (code: number | null) => done(new Error(`fake endpoint worker ${child.pid} exited (${code})`));
    const done = (err?: Error, v?: T) => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(v!);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send(msg as object);
  });
}

/** An Ed25519 pair ssh2 can parse back (its keygen sometimes cannot: mscdex/ssh2#1390). */
export function keyPair(): { private: string; public: string } {
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync('ed25519');
    if (!(ssh2.utils.parseKey(k.public) instanceof Error) && !(ssh2.utils.parseKey(k.private) instanceof Error))
      return { private: k.private, public: k.public };
  }
}

function publicLine(privatePem: string): string {
  const parsed = ssh2.utils.parseKey(privatePem);
  if (parsed instanceof Error) throw parsed;
  const k = Array.isArray(parsed) ? parsed[0]! : parsed;
  return `${k.type} ${k.getPublicSSH().toString('base64')}`;
}
