// `keel target up | down | status`: local systemd Debian containers with real sshd, published
// on 127.0.0.1 only, for trying keel and for its integration tests. Uses the docker CLI.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, runCommand } from './docker-cli.js';
import { ConfigError } from '../errors.js';
import { DockerEngineError, DockerMissingError, TargetImageError } from './errors.js';
import { renderLocalInventory } from './inventory-file.js';
import { ensureClientKey, knownHostsLine, writeAtomic } from './keys.js';
import { prepareTarget } from './prepare.js';
import { TARGET_RUN_OPTIONS, dockerRunArgs } from './run-options.js';

export interface TargetHost {
  name: string;
  container: string;
  port: number;
  address: '127.0.0.1';
}

export const LABEL_ROOT = 'keel.target';
export const LABEL_NAME = 'keel.target.name';
/** The project directory itself, so a sweep can tell containers whose project is gone. */
export const LABEL_ROOT_PATH = 'keel.target.root';
export const MAX_TARGETS = 20;

/** Where keel's target files live inside a project. */
export function targetPaths(root: string) {
  const dir = join(resolve(root), '.keel', 'target');
  return {
    keyFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    inventoryFile: join(resolve(root), 'inventories', 'local.yaml'),
  };
}

export function rootHash(root: string): string {
  return createHash('sha256').update(resolve(root)).digest('hex');
}

export function containerName(root: string, index: number): string {
  return `keel-${rootHash(root).slice(0, 10)}-target${index}`;
}

/** The directory keel is installed in (holds scripts/), from this module's location. */
export function keelPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'scripts', 'build-target-image.sh'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`scripts/build-target-image.sh not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/**
 * Make sure a Docker engine answers and the target image exists (building it from Debian's
 * packages the first time, about a minute). Returns the image tag, e.g. keel-target:1a2b3c4d5e6f.
 */
export async function ensureEngineAndImage(
  root: string,
  opts: { onProgress?: (chunk: string) => void } = {},
): Promise<string> {
  const ensure = join(root, 'scripts', 'ensure-docker.sh');
  const r1 = await runCommand('sh', [ensure], { onStderr: opts.onProgress });
  if (r1.code !== 0) {
    // Tell "no docker at all" from "docker there, engine down" (the script says which, too).
    await runCommand('docker', ['--version']).catch((err: unknown) => {
      throw err instanceof DockerMissingError ? new DockerMissingError(['docker'], { cause: err, stderr: r1.stderr }) : err;
    });
    throw new DockerEngineError(['sh', ensure], r1.code, r1.stderr);
  }
  const build = join(root, 'scripts', 'build-target-image.sh');
  const r2 = await runCommand('sh', [build], { onStderr: opts.onProgress });
  const tag = r2.stdout.trim().split('\n').pop() ?? '';
  if (r2.code !== 0 || !/^keel-target:\S+$/.test(tag)) {
    throw new TargetImageError(['sh', build], r2.code, r2.stderr, 'building the target image failed');
  }
  return tag;
}

interface Inspected extends TargetHost {
  state: string;
  id: string;
}

/** Containers labelled for this project, whatever their state, sorted by target number. */
async function listTargets(root: string): Promise<Inspected[]> {
  const ids = (await docker(['ps', '-a', '-q', '--filter', `label=${LABEL_ROOT}=${rootHash(root)}`]))
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  return (await inspect(ids)).sort((a, b) => targetIndex(a.name) - targetIndex(b.name));
}

function targetIndex(name: string): number {
  return Number(/(\d+)$/.exec(name)?.[1] ?? Number.MAX_SAFE_INTEGER);
}

interface DockerInspect {
  Id: string;
  Name: string;
  State: { Status: string };
  Config: { Labels: Record<string, string> | null };
  NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null };
}

async function inspect(ids: string[]): Promise<Inspected[]> {
  const out = JSON.parse(await docker(['inspect', ...ids])) as DockerInspect[];
  return out.map((c) => {
    const bindings = c.NetworkSettings.Ports?.[`${TARGET_RUN_OPTIONS.sshPort}/tcp`] ?? [];
    const loopback = bindings.find((b) => b.HostIp === TARGET_RUN_OPTIONS.publishAddress);
    return {
      id: c.Id,
      name: c.Config.Labels?.[LABEL_NAME] ?? c.Name.replace(/^\//, ''),
      container: c.Name.replace(/^\//, ''),
      port: loopback ? Number(loopback.HostPort) : 0,
      address: '127.0.0.1' as const,
      state: c.State.Status,
    };
  });
}

async function startTarget(root: string, index: number, image: string): Promise<void> {
  const name = `target${index}`;
  await docker(
    [
      'run', '-d',
      '--name', containerName(root, index),
      '--hostname', name,
      '--label', `${LABEL_ROOT}=${rootHash(root)}`,
      '--label', `${LABEL_NAME}=${name}`,
      '--label', `${LABEL_ROOT_PATH}=${resolve(root)}`,
      ...dockerRunArgs(),
      image,
      ...TARGET_RUN_OPTIONS.command,
    ],
    { context: `starting ${name}` },
  );
}

export async function targetUp(opts: {
  root: string;
  hosts: number;
  onProgress?: (chunk: string) => void;
}): Promise<{ hosts: TargetHost[]; inventoryFile: string; knownHostsFile: string; keyFile: string }> {
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_TARGETS) {
    throw new ConfigError(`--hosts must be a whole number from 1 to ${MAX_TARGETS}, got ${opts.hosts}`);
  }
  const root = resolve(opts.root);
  const paths = targetPaths(root);
  const image = await ensureEngineAndImage(keelPackageRoot(), { onProgress: opts.onProgress });
  const key = await ensureClientKey(paths.keyFile);

  // Reuse what runs, restart what stopped, start what is missing; leave extra targets alone.
  const existing = await listTargets(root);
  const wanted = Array.from({ length: opts.hosts }, (_, i) => i + 1);
  await Promise.all(
    wanted.map(async (i) => {
      const found = existing.find((c) => c.name === `target${i}`);
      if (!found) await startTarget(root, i, image);
      else if (found.state !== 'running') await docker(['start', found.id], { context: `restarting target${i}` });
    }),
  );
  const all = await listTargets(root);
  const hosts = wanted.map((i) => {
    const c = all.find((t) => t.name === `target${i}`);
    if (!c || c.state !== 'running' || !c.port) {
      throw new DockerEngineError(['docker', 'inspect', containerName(root, i)], null, `target${i} is ${c?.state ?? 'missing'} after start`);
    }
    return c;
  });

  const prepared = await Promise.all(hosts.map((h) => prepareTarget(h.container, key.publicKey, h.port)));
  const knownHosts = hosts.map((h, i) => knownHostsLine(h.address, h.port, prepared[i]!.hostKey));
  await writeAtomic(paths.knownHostsFile, knownHosts.join('\n') + '\n', 0o644);

  const result: TargetHost[] = hosts.map(({ name, container, port, address }) => ({ name, container, port, address }));
  await writeAtomic(
    paths.inventoryFile,
    renderLocalInventory({ ...paths, hosts: result }),
    0o644,
  );
  return { hosts: result, ...paths };
}

/** Remove every container of this project (any state). The key and files are kept. */
export async function targetDown(opts: { root: string }): Promise<{ removed: string[] }> {
  const targets = await listTargets(opts.root);
  if (targets.length > 0) await docker(['rm', '-f', '-v', ...targets.map((t) => t.id)]);
  return { removed: targets.map((t) => t.container) };
}

export async function targetStatus(opts: { root: string }): Promise<{ hosts: (TargetHost & { state: string })[] }> {
  const targets = await listTargets(opts.root);
  return { hosts: targets.map(({ name, container, port, address, state }) => ({ name, container, port, address, state })) };
}
