// How a local test target container runs: a systemd Debian with real sshd. The one source of
// these options for `keel target up` (docker CLI) and the test helper (testcontainers).
//
// `--privileged` fails on the machines keel is developed on (no CAP_SYS_RESOURCE), so systemd
// gets exactly what it needs and no more. See docs/test-targets.md.

export const TARGET_IMAGE = 'keel-target:latest';

export interface TargetRunOptions {
  capAdd: readonly string[];
  securityOpt: readonly string[];
  cgroupns: 'host';
  /** host path, container path, mode */
  binds: readonly { source: string; target: string; mode: 'rw' | 'ro' }[];
  tmpfs: readonly string[];
  command: readonly string[];
  /** The container port published, on loopback only, with a port the engine picks. */
  sshPort: 22;
  publishAddress: '127.0.0.1';
}

export const TARGET_RUN_OPTIONS: TargetRunOptions = {
  capAdd: ['SYS_ADMIN', 'NET_ADMIN'],
  securityOpt: ['seccomp=unconfined'],
  cgroupns: 'host',
  binds: [{ source: '/sys/fs/cgroup', target: '/sys/fs/cgroup', mode: 'rw' }],
  tmpfs: ['/run', '/run/lock'],
  command: ['/lib/systemd/systemd'],
  sshPort: 22,
  publishAddress: '127.0.0.1',
};

/** What systemd in the container needs, without any published port (the Vagrantfile's create_args). */
export function systemdRunArgs(o: TargetRunOptions = TARGET_RUN_OPTIONS): string[] {
  return [
    ...o.capAdd.flatMap((c) => ['--cap-add', c]),
    ...o.securityOpt.flatMap((s) => ['--security-opt', s]),
    `--cgroupns=${o.cgroupns}`,
    ...o.binds.flatMap((b) => ['-v', `${b.source}:${b.target}:${b.mode}`]),
    ...o.tmpfs.flatMap((t) => ['--tmpfs', t]),
  ];
}

/**
 * The `docker run` arguments for these options (without `run`, name, labels and image).
 * `publish` maps container ports to host ports on 127.0.0.1; without it, port 22 is
 * published on a port the engine picks.
 */
export function dockerRunArgs(o: TargetRunOptions = TARGET_RUN_OPTIONS, publish?: Record<number, number>): string[] {
  const ports = publish
    ? Object.entries(publish).flatMap(([container, host]) => ['-p', `${o.publishAddress}:${host}:${container}`])
    : ['-p', `${o.publishAddress}::${o.sshPort}`];
  return [...systemdRunArgs(o), ...ports];
}
