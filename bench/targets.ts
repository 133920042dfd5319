// The benchmark's targets: systemd Debian containers with real sshd on 127.0.0.1, started with
// the same options as `keel target up` (src/target/run-options.ts), from an image derived from
// keel-target with python3 and python3-apt (for Ansible and Mitogen only) and cron (a second
// enabled service) installed from Debian's mirror. Every container carries the label keel.bench=<pid of the bench>; a
// sweep at start removes those of a bench process that is gone.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { docker, dockerExecSh, runCommand } from '../src/target/docker-cli.js';
import { ensureEngineAndImage, keelPackageRoot } from '../src/target/docker.js';
import { ensureClientKey, knownHostsLine, writeAtomic, type ClientKey } from '../src/target/keys.js';
import { authorizeKey, prepareTarget, readHostKey, waitForSshBanner } from '../src/target/prepare.js';

const LIGHT_SSHD =
  'test -s /etc/ssh/ssh_host_ed25519_key || ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key; mkdir -p /run/sshd; exec /usr/sbin/sshd -D -e';
import { TARGET_RUN_OPTIONS, dockerRunArgs } from '../src/target/run-options.js';

export const BENCH_LABEL = 'keel.bench';

export interface BenchHost {
  name: string;
  container: string;
  port: number;
}

export class TargetPool {
  readonly hosts: BenchHost[] = [];
  private key!: ClientKey;
  private image!: string;
  private knownHosts: string[] = [];

  constructor(
    private readonly workDir: string,
    private readonly log: (s: string) => void,
  ) {}

  get keyFile(): string {
    return this.key.privateKeyFile;
  }
  get knownHostsFile(): string {
    return join(this.workDir, 'known_hosts');
  }

  async init(): Promise<void> {
    await sweepStale();
    const base = await ensureEngineAndImage(keelPackageRoot(), { onProgress: (c) => this.log(c.trimEnd()) });
    this.image = await ensureBenchImage(base, this.log);
    this.key = await ensureClientKey(join(this.workDir, 'id_ed25519'), 'keel-bench');
  }

  /** Hosts from now on are light endpoints: sshd as the container's only process, no systemd. */
  light = false;

  /**
   * Switch to light endpoints, removing the systemd targets. A systemd container holds several
   * inotify instances, and fs.inotify.max_user_instances (128 here, shared by every container
   * on the machine) runs out at about 20 of them; sshd alone holds none.
   */
  async useLightEndpoints(): Promise<void> {
    await this.destroy();
    this.hosts.length = 0;
    this.knownHosts.length = 0;
    this.light = true;
  }

  /** Start containers until there are `n`; reuses the running ones. */
  async grow(n: number): Promise<BenchHost[]> {
    const start = this.hosts.length;
    if (n > start) {
      this.log(`starting targets ${start + 1}..${n}`);
      const added = await mapLimit(range(start, n), 8, (i) => this.startOne(i + 1));
      this.hosts.push(...added.map((a) => a.host));
      this.knownHosts.push(...added.map((a) => a.known));
      await writeAtomic(this.knownHostsFile, this.knownHosts.join('\n') + '\n', 0o644);
    }
    return this.hosts.slice(0, n);
  }

  private async startOne(index: number): Promise<{ host: BenchHost; known: string }> {
    const container = `keel-bench-${process.pid}-h${index}`;
    const label = ['--name', container, '--hostname', `h${index}`, '--label', `${BENCH_LABEL}=${process.pid}`];
    if (this.light) {
      await docker(
        [
          'run',
          '-d',
          ...label,
          '-p',
          `${TARGET_RUN_OPTIONS.publishAddress}::${TARGET_RUN_OPTIONS.sshPort}`,
          '--entrypoint',
          'sh',
          this.image,
          '-c',
          LIGHT_SSHD,
        ],
        {
          context: `starting light bench target h${index}`,
        },
      );
    } else {
      await docker(['run', '-d', ...label, ...dockerRunArgs(), this.image, ...TARGET_RUN_OPTIONS.command], { context: `starting bench target h${index}` });
    }
    const port = await publishedPort(container);
    let hostKey: string;
    if (this.light) {
      await waitForSshBanner('127.0.0.1', port);
      await authorizeKey(container, 'root', this.key.publicKey);
      hostKey = await readHostKey(container);
    } else {
      hostKey = (await prepareTarget(container, this.key.publicKey, port)).hostKey;
    }
    return { host: { name: `h${index}`, container, port }, known: knownHostsLine('127.0.0.1', port, hostKey) };
  }

  /** Run a root shell snippet in each container through the engine (not over SSH). */
  async execAll(hosts: BenchHost[], script: string): Promise<string[]> {
    return mapLimit(hosts, 10, async (h) => {
      const r = await dockerExecSh(h.container, script);
      if (r.code !== 0) throw new Error(`docker exec on ${h.name} failed (exit ${r.code}): ${r.stderr.slice(-500)}`);
      return r.stdout;
    });
  }

  async destroy(): Promise<void> {
    await removeByLabel(`${BENCH_LABEL}=${process.pid}`);
  }
}

/** Cleanup on a signal: synchronous, so nothing else in the event loop can end the process first. */
export function destroyNow(): void {
  const filter = `label=${BENCH_LABEL}=${process.pid}`;
  try {
    const ids = execFileSync('docker', ['ps', '-a', '-q', '--filter', filter], { encoding: 'utf8' }).split('\n').filter(Boolean);
    if (ids.length) execFileSync('docker', ['rm', '-f', '-v', ...ids], { stdio: 'ignore' });
  } catch {
    /* best effort: the next bench run sweeps containers of dead bench processes */
  }
}

async function removeByLabel(filter: string): Promise<void> {
  const ids = (await docker(['ps', '-a', '-q', '--filter', `label=${filter}`])).split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) await docker(['rm', '-f', '-v', ...ids.slice(i, i + 50)]).catch(() => undefined);
}

/** Containers of a bench run whose process is gone (a crash or kill -9). */
async function sweepStale(): Promise<void> {
  const out = await docker(['ps', '-a', '--filter', `label=${BENCH_LABEL}`, '--format', `{{.ID}} {{.Label "${BENCH_LABEL}"}}`]);
  const stale = out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .filter(([, pid]) => !isAlive(Number(pid)))
    .map(([id]) => id!);
  if (stale.length) await docker(['rm', '-f', '-v', ...stale]);
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function publishedPort(container: string): Promise<number> {
  const out = await docker(['port', container, `${TARGET_RUN_OPTIONS.sshPort}/tcp`]);
  const m = /^127\.0\.0\.1:(\d+)$/m.exec(out);
  if (!m) throw new Error(`${container}: port 22 is not published on 127.0.0.1 (${out.trim()})`);
  return Number(m[1]);
}

/**
 * What the bench image adds to keel-target, from Debian's mirror: python3 for Ansible (keel does
 * not use it), python3-apt for Ansible's apt module (Ansible installs it itself when missing,
 * which hides the need; Mitogen cannot respawn an interpreter to find it, so `--tools
 * keel,mitogen` alone failed without it), cron as a second enabled service. Part of the tag.
 */
export const BENCH_IMAGE_PACKAGES = ['python3', 'python3-apt', 'cron'];

/**
 * keel-bench-target:<base id>-<recipe hash>: the keel target image plus BENCH_IMAGE_PACKAGES,
 * installed with apt inside a running target, then committed (host keys removed first, so each
 * container makes its own). Built once per base image and package list.
 */
async function ensureBenchImage(baseTag: string, log: (s: string) => void): Promise<string> {
  const baseId = (await docker(['image', 'inspect', '-f', '{{.Id}}', baseTag]))
    .trim()
    .replace(/^sha256:/, '')
    .slice(0, 12);
  const recipe = createHash('sha256').update(BENCH_IMAGE_PACKAGES.join(' ')).digest('hex').slice(0, 8);
  const tag = `keel-bench-target:${baseId}-${recipe}`;
  if ((await runCommand('docker', ['image', 'inspect', tag])).code === 0) return tag;
  log(`building ${tag}: apt-get install ${BENCH_IMAGE_PACKAGES.join(' ')} inside a target (about a minute)`);
  const name = `keel-bench-${process.pid}-image`;
  await docker(['run', '-d', '--name', name, '--label', `${BENCH_LABEL}=${process.pid}`, ...dockerRunArgs(), baseTag, ...TARGET_RUN_OPTIONS.command]);
  try {
    const r = await dockerExecSh(
      name,
      `set -e
i=0; until systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded'; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends ${BENCH_IMAGE_PACKAGES.join(' ')} >/dev/null
python3 -c 'import apt, apt_pkg'
systemctl enable --now cron
apt-get clean; rm -rf /var/lib/apt/lists/*
rm -f /etc/ssh/ssh_host_*`,
    );
    if (r.code !== 0) throw new Error(`installing ${BENCH_IMAGE_PACKAGES.join(', ')} in the bench image failed (exit ${r.code}): ${r.stderr.slice(-800)}`);
    await docker(['stop', name]);
    // The build container's label must not stick to the image (the sweep keys on it).
    await docker(['commit', '--change', `LABEL ${BENCH_LABEL}=`, name, tag]);
  } finally {
    await docker(['rm', '-f', '-v', name]).catch(() => undefined);
  }
  return tag;
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
