// How each tool is run and timed: as the child process a user would start, wall time from spawn
// to exit (so keel's time includes Node's start-up, and Ansible's includes Python's).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PhaseTimes } from '../src/timing.js';
import type { BenchHost } from './targets.js';
import { writeKeelRole, writeAnsiblePlaybook, type Workload } from './workload.js';

export type Tool = 'keel' | 'ansible' | 'mitogen';

export interface ToolRun {
  seconds: number;
  changed: number;
  failed: number;
  unreachable: number;
  /** keel only: exec channels per host, from the JSON report. */
  roundTrips?: number[];
  /** keel only: the controller process's peak RSS (GNU time %M). */
  peakRssMb?: number | null;
  /** keel only: the controller process's user and system CPU seconds (GNU time %U, %S). */
  cpuUserS?: number | null;
  cpuSysS?: number | null;
  /** keel only, when sampled: most file descriptors the keel process had open at once. */
  peakFds?: number | null;
  /** keel only: the JSON report's durationMs (connect + scripts, after compile). */
  reportMs?: number;
  /** keel only, when asked for: the run's phase times (KEEL_PHASE_TIMES, src/timing.ts). */
  phases?: PhaseTimes | null;
  error?: string;
}

interface Spawned {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(file: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; onSpawn?: (pid: number) => void }): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) opts.onSpawn?.(child.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), seconds });
    });
  });
}

const GNU_TIME = '/usr/bin/time';

function readPhases(file: string): PhaseTimes | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as PhaseTimes;
  } catch {
    return null;
  }
}
const RSS_MARK = 'KEEL_BENCH_MAXRSS_KB=';
const TIME_FORMAT = `${RSS_MARK}%M cpu=%U,%S`;

export interface ProvisionOptions {
  /** Run keel with at least this many open files allowed (`ulimit -n` in a sh before it). */
  nofile?: number;
  /** Sample the keel process's open file descriptors every 100 ms (for ToolRun.peakFds). */
  sampleFds?: boolean;
  /** Where keel writes its phase times (ToolRun.phases). */
  phasesFile?: string;
}

/** A temp keel project: roles/bench + one inventory per host count. */
export class KeelProject {
  constructor(
    readonly dir: string,
    readonly workload: Workload,
    private readonly keelRoot: string,
  ) {}

  static async create(dir: string, workload: Workload, keelRoot: string): Promise<KeelProject> {
    await mkdir(join(dir, 'inventories'), { recursive: true });
    await writeKeelRole(dir, workload);
    return new KeelProject(dir, workload, keelRoot);
  }

  async writeInventory(env: string, hosts: BenchHost[], keyFile: string, knownHostsFile: string): Promise<void> {
    const lines = [
      `known_hosts: ${JSON.stringify(knownHostsFile)}`,
      'hosts:',
      ...hosts.map((h) => `  ${h.name}: {address: 127.0.0.1, port: ${h.port}, user: root, key: ${JSON.stringify(keyFile)}, groups: [bench]}`),
      'groups:',
      '  bench: {roles: [bench]}',
      '',
    ];
    await writeFile(join(this.dir, 'inventories', `${env}.yaml`), lines.join('\n'));
  }

  /** `node bin/keel.js provision ENV --output json`, under GNU time for the peak RSS and CPU. */
  async provision(env: string, o: ProvisionOptions = {}): Promise<ToolRun> {
    const keel = [join(this.keelRoot, 'bin', 'keel.js'), 'provision', env, '--output', 'json'];
    const withTime = existsSync(GNU_TIME);
    let argv = withTime ? [GNU_TIME, '-f', TIME_FORMAT, process.execPath, ...keel] : [process.execPath, ...keel];
    if (o.nofile) argv = ['/bin/sh', '-c', `ulimit -n ${o.nofile} && exec "$@"`, 'sh', ...argv];
    const sampler = o.sampleFds ? new FdSampler() : null;
    if (o.phasesFile) await rm(o.phasesFile, { force: true });
    const keelEnv = { KEEL_ROOT: this.dir, ...(o.phasesFile ? { KEEL_PHASE_TIMES: o.phasesFile } : {}) };
    const r = await run(argv[0]!, argv.slice(1), { cwd: this.dir, env: keelEnv, onSpawn: (pid) => sampler?.start(pid) });
    const phases = o.phasesFile ? readPhases(o.phasesFile) : undefined;
    sampler?.stop();
    const rss = new RegExp(`${RSS_MARK}(\\d+) cpu=([\\d.]+),([\\d.]+)`).exec(r.stderr);
    let report: {
      changed: number;
      failed: number;
      unreachable: number;
      durationMs: number;
      hosts: { roundTrips: number; error: string | null; name: string; resources: { id: string; status: string; reason: string }[] }[];
    };
    try {
      report = JSON.parse(r.stdout);
    } catch {
      return { seconds: r.seconds, changed: 0, failed: 0, unreachable: 0, error: `keel exited ${r.code} without a JSON report: ${tail(r.stderr || r.stdout)}` };
    }
    const hostErrors = report.hosts.filter((h) => h.error).map((h) => `${h.name}: ${h.error}`);
    const failedRes = report.hosts.flatMap((h) => h.resources.filter((x) => x.status === 'failed').map((x) => `${h.name} ${x.id}: ${x.reason}`));
    return {
      seconds: r.seconds,
      changed: report.changed,
      failed: report.failed,
      unreachable: report.unreachable,
      roundTrips: report.hosts.map((h) => h.roundTrips),
      peakRssMb: rss ? Number(rss[1]) / 1024 : null,
      cpuUserS: rss ? Number(rss[2]) : null,
      cpuSysS: rss ? Number(rss[3]) : null,
      ...(sampler ? { peakFds: sampler.peak } : {}),
      reportMs: report.durationMs,
      ...(phases !== undefined ? { phases } : {}),
      ...(r.code !== 0 ? { error: `keel exited ${r.code}: ${[...hostErrors, ...failedRes].slice(0, 5).join('; ') || tail(r.stderr)}` } : {}),
    };
  }
}

const MITOGEN_STRATEGIES = '/usr/lib/python3/dist-packages/ansible_mitogen/plugins/strategy';

/** A temp Ansible project: the playbook, one INI inventory per host count, two configs. */
export class AnsibleProject {
  private constructor(
    readonly dir: string,
    readonly playbook: string,
  ) {}

  static async create(dir: string, workload: Workload, knownHostsFile: string): Promise<AnsibleProject> {
    await mkdir(dir, { recursive: true });
    const playbook = await writeAnsiblePlaybook(dir, workload);
    // Ansible at its best: pipelining, ControlPersist (masters kept across runs), no facts.
    const controlDir = join(dir, 'cp');
    await mkdir(controlDir, { recursive: true });
    const common = [
      '[defaults]',
      'gathering = explicit',
      'host_key_checking = True',
      'interpreter_python = /usr/bin/python3',
      'retry_files_enabled = False',
      'deprecation_warnings = False',
      'nocolor = True',
      `local_tmp = ${join(dir, 'tmp')}`,
    ];
    const ssh = [
      '[ssh_connection]',
      'pipelining = True',
      `ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=${knownHostsFile} ` +
        '-o StrictHostKeyChecking=yes -o PreferredAuthentications=publickey',
      `control_path_dir = ${controlDir}`,
      'control_path = %(directory)s/%%C',
    ];
    await writeFile(join(dir, 'ansible.cfg'), [...common, '', ...ssh, ''].join('\n'));
    await writeFile(join(dir, 'mitogen.cfg'), [...common, `strategy_plugins = ${MITOGEN_STRATEGIES}`, 'strategy = mitogen_linear', '', ...ssh, ''].join('\n'));
    return new AnsibleProject(dir, playbook);
  }

  async writeInventory(env: string, hosts: BenchHost[], keyFile: string): Promise<void> {
    const lines = [
      '[bench]',
      ...hosts.map((h) => `${h.name} ansible_host=127.0.0.1 ansible_port=${h.port}`),
      '',
      '[bench:vars]',
      'ansible_user=root',
      `ansible_ssh_private_key_file=${keyFile}`,
      '',
    ];
    await writeFile(join(this.dir, `${env}.ini`), lines.join('\n'));
  }

  async play(env: string, hostCount: number, mitogen: boolean): Promise<ToolRun> {
    const r = await run('ansible-playbook', ['-i', `${env}.ini`, '-f', String(Math.max(5, hostCount)), this.playbook], {
      cwd: this.dir,
      env: { ANSIBLE_CONFIG: join(this.dir, mitogen ? 'mitogen.cfg' : 'ansible.cfg'), ANSIBLE_FORCE_COLOR: '0', PYTHONDONTWRITEBYTECODE: '1' },
    });
    const recap = [...r.stdout.matchAll(/^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
    const sum = (k: number) => recap.reduce((a, m) => a + Number(m[k]), 0);
    const res: ToolRun = { seconds: r.seconds, changed: sum(3), unreachable: sum(4), failed: sum(5) };
    if (r.code !== 0 || recap.length !== hostCount) {
      const fatal = r.stdout
        .split('\n')
        .filter((l) => /fatal:|FAILED|ERROR|UNREACHABLE/.test(l))
        .slice(0, 3)
        .join(' | ');
      res.error = `ansible-playbook exited ${r.code} (${recap.length}/${hostCount} hosts in the recap): ${tail(fatal || r.stderr || r.stdout)}`;
    }
    return res;
  }
}

/**
 * The most file descriptors the node process under `pid` (GNU time, maybe a sh before it) had
 * open, read from /proc every 100 ms.
 */
class FdSampler {
  peak: number | null = null;
  private timer: NodeJS.Timeout | undefined;

  start(pid: number): void {
    this.timer = setInterval(() => {
      const node = nodeUnder(pid);
      if (node === undefined) return;
      try {
        const n = readdirSync(`/proc/${node}/fd`).length;
        this.peak = Math.max(this.peak ?? 0, n);
      } catch {
        // gone
      }
    }, 100);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The first descendant of `pid` whose command is node (its own pid if it is node). */
function nodeUnder(pid: number): number | undefined {
  for (let p: number | undefined = pid, depth = 0; p !== undefined && depth < 4; depth++) {
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'node') return p;
      const kids: string[] = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      p = kids.length ? Number(kids[0]) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function tail(s: string, n = 600): string {
  const t = s.trim();
  return t.length > n ? `…${t.slice(-n)}` : t;
}
