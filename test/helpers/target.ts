// Real test targets for integration tests: a systemd Debian container with real sshd,
// published on 127.0.0.1 only. Same run options as `keel target up` (src/target/run-options.ts).
//
//   const t = await startTarget({ users: true });
//   afterAll(() => t.stop());
//
// Containers carry a test label and the pid of the process that started them; the first
// startTarget() in a process removes labelled containers whose process is gone (a crashed
// run), so parallel test processes never remove each other's targets.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer, WaitStrategy } from 'testcontainers';
import { docker, dockerExecSh } from '../../src/target/docker-cli.js';
import { LABEL_ROOT, LABEL_ROOT_PATH, ensureEngineAndImage, keelPackageRoot } from '../../src/target/docker.js';
import { ensureClientKey, knownHostsLine, type ClientKey } from '../../src/target/keys.js';
import { authorizeKey, readHostKey, waitForSshBanner, waitForSystemd } from '../../src/target/prepare.js';
import { TARGET_RUN_OPTIONS } from '../../src/target/run-options.js';
import type { Distro } from '../../src/target/registry.js';

// The reaper (ryuk) is an image that cannot be pulled here; we clean up ourselves. Must be
// set before testcontainers is loaded, hence the dynamic import below.
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
const { GenericContainer } = await import('testcontainers');

export const TEST_LABEL = 'keel.test.target';
export const OWNER_LABEL = 'keel.test.owner';
/** Password of user `deployp`, whose sudo asks for it. */
export const DEPLOYP_PASSWORD = 'keel-test-sudo';

export interface ExecOutput {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestTarget {
  name: string;
  host: '127.0.0.1';
  port: number;
  container: StartedTestContainer;
  /** Private key authorized for root (and deploy, deployp with `users: true`). */
  keyFile: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 ...` for this target only. */
  knownHostsFile: string;
  /** The ed25519 host key line read from inside the container (`ssh-ed25519 AAAA...`). */
  hostKey: string;
  /** Run a command in the container as root through the engine (not over SSH). */
  exec(cmd: string[]): Promise<ExecOutput>;
  stop(): Promise<void>;
}

/** Waits for systemd to finish starting and for sshd's banner on the published port. */
class SystemdSshReady implements WaitStrategy {
  private timeoutMs = 60_000;
  async waitUntilReady(container: { id: string }, boundPorts: { getBinding(port: number): number }): Promise<void> {
    await waitForSystemd(container.id);
    await waitForSshBanner('127.0.0.1', boundPorts.getBinding(TARGET_RUN_OPTIONS.sshPort), this.timeoutMs);
  }
  withStartupTimeout(ms: number): this {
    this.timeoutMs = ms;
    return this;
  }
  isStartupTimeoutSet(): boolean {
    return true;
  }
  getStartupTimeout(): number {
    return this.timeoutMs;
  }
}

/** GenericContainer plus what its builder methods do not offer: cgroupns=host, loopback-only port. */
class SystemdTargetContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    const o = TARGET_RUN_OPTIONS;
    this.withAddedCapabilities(...o.capAdd)
      .withSecurityOpt(...o.securityOpt)
      .withBindMounts(o.binds.map((b) => ({ ...b })))
      .withTmpFs(Object.fromEntries(o.tmpfs.map((t) => [t, ''])))
      .withCommand([...o.command])
      .withExposedPorts(o.sshPort)
      .withWaitStrategy(new SystemdSshReady() as unknown as WaitStrategy);
    // dockerode's HostConfig type lacks CgroupnsMode; the engine API (1.41+) has it.
    const hc = this.hostConfig as { CgroupnsMode?: string; PortBindings?: unknown };
    hc.CgroupnsMode = o.cgroupns;
    // withExposedPorts binds every host address; publish on loopback only, like -p 127.0.0.1::22.
    hc.PortBindings = { [`${o.sshPort}/tcp`]: [{ HostIp: o.publishAddress, HostPort: '0' }] };
  }
}

let ready: Promise<{ key: ClientKey; keyDir: string }> | undefined;
const baseImages = new Map<Distro, Promise<string>>();

function setup(distro: Distro): Promise<{ image: string; key: ClientKey; keyDir: string }> {
  ready ??= (async () => {
    await ensureEngineAndImage(keelPackageRoot());
    await sweepTargets();
    // One key for all test runs of this checkout (.keel/ is git-ignored): no temp dir to leak.
    const keyDir = join(keelPackageRoot(), '.keel', 'test');
    const key = await ensureClientKey(join(keyDir, 'id_ed25519'), 'keel-test');
    return { key, keyDir };
  })();
  if (!baseImages.has(distro))
    baseImages.set(
      distro,
      ready.then(() => ensureEngineAndImage(keelPackageRoot(), { distro })),
    );
  return Promise.all([ready, baseImages.get(distro)!]).then(([r, image]) => ({ ...r, image }));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove leftovers of crashed runs: test targets whose owning process is gone, and
 * `keel target up` containers whose project directory no longer exists (temp roots of tests).
 */
export async function sweepTargets(): Promise<void> {
  const rows = await docker(['ps', '-a', '--filter', `label=${TEST_LABEL}`, '--format', `{{.ID}} {{.Label "${OWNER_LABEL}"}}`]);
  const dead = rows
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .filter(([, owner]) => !owner || (Number(owner) !== process.pid && !pidAlive(Number(owner))))
    .map(([id]) => id!);
  const projects = await docker(['ps', '-a', '--filter', `label=${LABEL_ROOT}`, '--format', `{{.ID}}\t{{.Label "${LABEL_ROOT_PATH}"}}`]);
  const orphans = projects
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'))
    .filter(([, root]) => root && root.startsWith(tmpdir()) && !existsSync(root))
    .map(([id]) => id!);
  const ids = [...dead, ...orphans];
  if (ids.length > 0) await docker(['rm', '-f', '-v', ...ids]);
}

const SETUP_USERS = `
set -eu
read -r pw
for u in deploy deployp; do id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"; done
printf 'deployp:%s\\n' "$pw" | chpasswd
printf 'deploy ALL=(ALL) NOPASSWD: ALL\\n' >/etc/sudoers.d/deploy
printf 'deployp ALL=(ALL) ALL\\n' >/etc/sudoers.d/deployp
chmod 440 /etc/sudoers.d/deploy /etc/sudoers.d/deployp
visudo -c >/dev/null`;

let counter = 0;
const warmImages = new Map<Distro, Promise<string>>();

/** The target image with the stack's Debian packages preinstalled (scripts/build-warm-image.sh):
 *  for tests of what runs on a stack (examples, deploy), not of installing it (the role tests). */
export function warmImage(distro: Distro = 'bookworm'): Promise<string> {
  if (!warmImages.has(distro)) {
    warmImages.set(
      distro,
      (async () => {
        const { runCommand } = await import('../../src/target/docker-cli.js');
        const r = await runCommand('sh', [join(keelPackageRoot(), 'scripts', 'build-warm-image.sh'), distro]);
        const tag = r.stdout.trim().split('\n').pop() ?? '';
        if (r.code !== 0 || !/^keel-target-warm:\S+$/.test(tag)) throw new Error(`building the ${distro} warm image failed (${r.code}):\n${r.stderr}`);
        return tag;
      })(),
    );
  }
  return warmImages.get(distro)!;
}

export async function startTarget(opts: { users?: boolean; name?: string; warm?: boolean; distro?: Distro } = {}): Promise<TestTarget> {
  const distro = opts.distro ?? 'bookworm';
  const { image: base, key } = await setup(distro);
  const image = opts.warm ? await warmImage(distro) : base;
  const name = opts.name ?? `target${++counter}`;
  const container = await new SystemdTargetContainer(image)
    .withName(`keel-test-${process.pid}-${name}-${Date.now().toString(36)}`)
    .withHostname(name)
    .withLabels({ [TEST_LABEL]: 'true', [OWNER_LABEL]: String(process.pid) })
    .start();
  const dir = await mkdtemp(join(tmpdir(), `keel-test-${name}-`));
  try {
    const id = container.getId();
    const port = container.getMappedPort(TARGET_RUN_OPTIONS.sshPort);
    const [hostKey] = await Promise.all([readHostKey(id), authorizeKey(id, 'root', key.publicKey)]);
    if (opts.users) {
      const r = await dockerExecSh(id, SETUP_USERS, { stdin: `${DEPLOYP_PASSWORD}\n` });
      if (r.code !== 0) throw new Error(`creating test users failed (${r.code}): ${r.stderr}`);
      await Promise.all(['deploy', 'deployp'].map((u) => authorizeKey(id, u, key.publicKey)));
    }
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, knownHostsLine('127.0.0.1', port, hostKey) + '\n');
    let stopped = false;
    return {
      name,
      host: '127.0.0.1',
      port,
      container,
      keyFile: key.privateKeyFile,
      knownHostsFile,
      hostKey,
      async exec(cmd) {
        const r = await container.exec(cmd);
        return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await container.stop({ timeout: 0, remove: true, removeVolumes: true });
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await container.stop({ timeout: 0, remove: true, removeVolumes: true }).catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** `sh -c script` in the target as root (through the engine, not SSH), whatever its exit code. */
export function shExec(t: TestTarget, script: string): Promise<ExecOutput> {
  return t.exec(['sh', '-c', script]);
}

/** `sh -c script` in the target as root: its stdout. A non-zero exit fails the test with the
 *  script, the exit code and the output. */
export async function sh(t: TestTarget, script: string): Promise<string> {
  const r = await shExec(t, script);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${script}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** From this machine to a target's address (on the Docker bridge, so through its firewall):
 *  'open' when a TCP connection is accepted, 'refused' on RST, 'timeout' when packets are dropped. */
export function probe(host: string, port: number, ms = 2000): Promise<'open' | 'refused' | 'timeout'> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (r: 'open' | 'refused' | 'timeout') => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(ms, () => done('timeout'));
    s.once('connect', () => done('open'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'timeout'));
  });
}
