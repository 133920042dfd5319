// `keel target up | down | status`: local systemd Debian containers with real sshd, published
// on 127.0.0.1 only, for trying keel and for its integration tests. Uses the docker CLI.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, runCommand } from './docker-cli.js';
import { ConfigError } from '../errors.js';
import { DockerCommandError, DockerEngineError, DockerMissingError, TargetImageError } from './errors.js';
import { GENERATED_HEADER, renderLocalInventory } from './inventory-file.js';
import { ensureClientKey, knownHostsLine, writeAtomic } from './keys.js';
import { isPortFree, pickFreePort, portInUseError } from './ports.js';
import { prepareTarget } from './prepare.js';
import {
  CONTAINER_PORTS,
  DEFAULT_DISTRO,
  PORT_KINDS,
  TARGET_ADDRESS,
  checkTargetName,
  compareNames,
  readRegistry,
  targetPaths,
  targetUrls,
  writeRegistry,
  type Distro,
  type PortKind,
  type Registry,
  type TargetPorts,
} from './registry.js';
import { TARGET_RUN_OPTIONS, dockerRunArgs } from './run-options.js';

export interface TargetHost {
  name: string;
  container: string;
  address: '127.0.0.1';
  /** The SSH port (ports.ssh), for callers that only want SSH. */
  port: number;
  /** Host ports on 127.0.0.1 for the container's 22, 80 and 443. */
  ports: TargetPorts;
  urls: { http: string; https: string };
  /** The Debian release it runs. */
  distro: Distro;
}

export const LABEL_ROOT = 'keel.target';
export const LABEL_NAME = 'keel.target.name';
/** The Debian release of the target's image (bookworm when absent: older targets). */
export const LABEL_DISTRO = 'keel.target.distro';
/** The project directory itself, so a sweep can tell containers whose project is gone. */
export const LABEL_ROOT_PATH = 'keel.target.root';
/** How many targets one `keel target up` may start. */
export const MAX_TARGETS = 20;

export function rootHash(root: string): string {
  return createHash('sha256').update(resolve(root)).digest('hex');
}

export function containerName(root: string, name: string): string {
  return `keel-${rootHash(root).slice(0, 10)}-${name}`;
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
 * Make sure a Docker engine answers and the target image of `distro` (bookworm by default)
 * exists, building it from Debian's packages the first time (about a minute). Returns the
 * image tag, e.g. keel-target:trixie-1a2b3c4d5e6f.
 */
export async function ensureEngineAndImage(root: string, opts: { onProgress?: (chunk: string) => void; distro?: Distro } = {}): Promise<string> {
  await ensureEngine(root, opts.onProgress);
  return ensureImage(root, opts.distro ?? DEFAULT_DISTRO, opts.onProgress);
}

/** A Docker engine answers (scripts/ensure-docker.sh installs and starts one if it can). */
async function ensureEngine(root: string, onProgress?: (chunk: string) => void): Promise<void> {
  const ensure = join(root, 'scripts', 'ensure-docker.sh');
  const r1 = await runCommand('sh', [ensure], { onStderr: onProgress });
  if (r1.code !== 0) {
    // Tell "no docker at all" from "docker there, engine down" (the script says which, too).
    await runCommand('docker', ['--version']).catch((err: unknown) => {
      throw err instanceof DockerMissingError ? new DockerMissingError(['docker'], { cause: err, stderr: r1.stderr }) : err;
    });
    throw new DockerEngineError(['sh', ensure], r1.code, r1.stderr);
  }
}

/** The target image of `distro` (scripts/build-target-image.sh builds it once per recipe). */
async function ensureImage(root: string, distro: Distro, onProgress?: (chunk: string) => void): Promise<string> {
  const build = join(root, 'scripts', 'build-target-image.sh');
  const r2 = await runCommand('sh', [build, distro], { onStderr: onProgress });
  const tag = r2.stdout.trim().split('\n').pop() ?? '';
  if (r2.code !== 0 || !/^keel-target:\S+$/.test(tag)) {
    throw new TargetImageError(['sh', build, distro], r2.code, r2.stderr, `building the ${distro} target image failed`);
  }
  return tag;
}

/** A container of this project, as the engine reports it. */
export interface Inspected {
  id: string;
  name: string;
  container: string;
  state: string;
  /**
   * Host ports on 127.0.0.1 the container was created with (HostConfig.PortBindings); a port
   * the engine picked at start (older keel) or one not on 127.0.0.1 is missing here.
   */
  fixed: Partial<TargetPorts>;
  /** Docker networks it is attached to. */
  networks: string[];
  distro: Distro;
  /** Where its ports are published now (running containers only). */
  live: Partial<TargetPorts>;
}

/** Containers labelled for this project, whatever their state, by name. */
export async function listTargets(root: string): Promise<Map<string, Inspected>> {
  const ids = (await docker(['ps', '-a', '-q', '--filter', `label=${LABEL_ROOT}=${rootHash(root)}`])).split('\n').filter(Boolean);
  const found = ids.length ? await inspect(ids) : [];
  return new Map(found.sort((a, b) => compareNames(a.name, b.name)).map((c) => [c.name, c]));
}

type Bindings = Record<string, { HostIp: string; HostPort: string }[] | null> | null | undefined;

interface DockerInspect {
  Id: string;
  Name: string;
  State: { Status: string };
  Config: { Labels: Record<string, string> | null };
  HostConfig: { PortBindings: Bindings };
  NetworkSettings: { Ports: Bindings; Networks?: Record<string, unknown> };
}

/** The 127.0.0.1 host port of each of 22, 80, 443 in a bindings table. */
function loopbackPorts(bindings: Bindings): Partial<TargetPorts> {
  const out: Partial<TargetPorts> = {};
  for (const kind of PORT_KINDS) {
    const b = bindings?.[`${CONTAINER_PORTS[kind]}/tcp`]?.find((x) => x.HostIp === TARGET_RUN_OPTIONS.publishAddress);
    const port = Number(b?.HostPort);
    if (Number.isInteger(port) && port > 0) out[kind] = port;
  }
  return out;
}

async function inspect(ids: string[]): Promise<Inspected[]> {
  const out = JSON.parse(await docker(['inspect', ...ids])) as DockerInspect[];
  return out.map((c) => ({
    id: c.Id,
    name: c.Config.Labels?.[LABEL_NAME] ?? c.Name.replace(/^\//, ''),
    container: c.Name.replace(/^\//, ''),
    state: c.State.Status,
    fixed: loopbackPorts(c.HostConfig.PortBindings),
    live: c.State.Status === 'running' ? loopbackPorts(c.NetworkSettings.Ports) : {},
    networks: Object.keys(c.NetworkSettings.Networks ?? {}),
    distro: (c.Config.Labels?.[LABEL_DISTRO] as Distro | undefined) ?? DEFAULT_DISTRO,
  }));
}

function samePorts(a: Partial<TargetPorts>, b: TargetPorts): boolean {
  return PORT_KINDS.every((k) => a[k] === b[k]);
}

function complete(p: Partial<TargetPorts>): p is TargetPorts {
  return PORT_KINDS.every((k) => p[k] !== undefined);
}

async function runTarget(root: string, name: string, image: string, distro: Distro, ports: TargetPorts): Promise<void> {
  const publish = Object.fromEntries(PORT_KINDS.map((k) => [CONTAINER_PORTS[k], ports[k]]));
  await docker(
    [
      'run',
      '-d',
      '--name',
      containerName(root, name),
      '--hostname',
      name,
      '--label',
      `${LABEL_ROOT}=${rootHash(root)}`,
      '--label',
      `${LABEL_NAME}=${name}`,
      '--label',
      `${LABEL_ROOT_PATH}=${resolve(root)}`,
      '--label',
      `${LABEL_DISTRO}=${distro}`,
      ...dockerRunArgs(TARGET_RUN_OPTIONS, publish),
      // One network per project: targets reach each other by name (db1:5432), as a
      // private network between servers would let them.
      '--network',
      networkName(root),
      '--network-alias',
      name,
      image,
      ...TARGET_RUN_OPTIONS.command,
    ],
    { context: `starting ${name}` },
  );
}

const LABELS: Record<PortKind, string> = { ssh: 'SSH', http: 'HTTP', https: 'HTTPS' };

/** What one `keel target up` shares between its targets. */
interface UpContext {
  root: string;
  /** The image of each release wanted. */
  images: Partial<Record<Distro, string>>;
  /** Every port recorded or handed out in this run: a new port is never one of them. */
  taken: Set<number>;
  notice: (message: string) => void;
}

/**
 * Bring one target up on its recorded ports: keep it if it runs, `docker start` it if it
 * stopped, create it if it is gone. A recorded port something else now holds is replaced
 * (and said so); the container is then re-created, since Docker fixes ports at creation.
 */
async function ensureTarget(
  ctx: UpContext,
  name: string,
  distro: Distro,
  found: Inspected | undefined,
  recorded: TargetPorts | undefined,
): Promise<TargetPorts> {
  let ports = recorded;
  if (!ports && found && complete(found.fixed)) ports = found.fixed; // the record was removed: adopt
  let busy: number | undefined; // a port Docker said was taken when starting the old container
  if (found && ports && samePorts(found.fixed, ports)) {
    if (found.state === 'running') return ports;
    if (await allFree(ports)) {
      try {
        await docker(['start', found.id], { context: `restarting ${name}` });
        return ports;
      } catch (err) {
        busy = err instanceof DockerCommandError ? portInUseError(err.stderr) : undefined;
        if (busy === undefined) throw err;
      }
    }
  } else if (found) {
    const why = complete(found.fixed) ? 'with other ports than the recorded ones' : 'without fixed SSH, HTTP and HTTPS ports (by an older keel)';
    ctx.notice(`${name}: its container was created ${why}; re-creating it`);
  }
  if (found) await docker(['rm', '-f', '-v', found.id], { context: `removing ${name} to re-create it` });

  const next: Partial<TargetPorts> = { ...ports };
  const move = async (kind: PortKind) => {
    const moved = await pickFreePort(ctx.taken);
    ctx.notice(
      `${name}: its ${LABELS[kind]} port 127.0.0.1:${next[kind]} is taken by another program; ` +
        `${name}'s ${LABELS[kind]} moves to 127.0.0.1:${moved} (recorded in .keel/target/targets.json)`,
    );
    next[kind] = moved;
  };
  for (const kind of PORT_KINDS) {
    const port = next[kind];
    if (port === undefined) next[kind] = await pickFreePort(ctx.taken);
    else if (port === busy || !(await isPortFree(port))) await move(kind);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await runTarget(ctx.root, name, ctx.images[distro]!, distro, next as TargetPorts);
      return next as TargetPorts;
    } catch (err) {
      // Free when we looked, taken when Docker bound it (a race, or a port Docker holds
      // without listening on it): move that port and try again, a few times.
      const port = err instanceof DockerCommandError ? portInUseError(err.stderr) : undefined;
      const kind = PORT_KINDS.find((k) => next[k] === port);
      if (!kind || attempt >= 4) throw err;
      await docker(['rm', '-f', '-v', containerName(ctx.root, name)]).catch(() => {});
      await move(kind);
    }
  }
}

async function allFree(ports: TargetPorts): Promise<boolean> {
  for (const kind of PORT_KINDS) if (!(await isPortFree(ports[kind]))) return false;
  return true;
}

/** The names `up` acts on: the ones given, else target1..N. */
function wantedNames(opts: { names?: string[]; hosts?: number }): string[] {
  if (opts.names?.length && opts.hosts !== undefined) throw new ConfigError('name targets or give --hosts N, not both');
  if (opts.names?.length) {
    for (const n of opts.names) checkTargetName(n);
    const names = [...new Set(opts.names)];
    if (names.length > MAX_TARGETS) throw new ConfigError(`at most ${MAX_TARGETS} targets at once, got ${names.length}`);
    return names;
  }
  const hosts = opts.hosts ?? 1;
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > MAX_TARGETS) {
    throw new ConfigError(`--hosts must be a whole number from 1 to ${MAX_TARGETS}, got ${hosts}`);
  }
  return Array.from({ length: hosts }, (_, i) => `target${i + 1}`);
}

export interface UpResult {
  hosts: TargetHost[];
  /** Ports that moved, containers re-created: things the user should know. */
  notices: string[];
  inventoryFile: string;
  knownHostsFile: string;
  keyFile: string;
  registryFile: string;
}

export async function targetUp(opts: {
  root: string;
  /** Targets by name; without names, `hosts` targets named target1..N (default 1). */
  names?: string[];
  hosts?: number;
  /** The Debian release of targets made now (default: what each one ran, else bookworm). */
  distro?: Distro;
  onProgress?: (chunk: string) => void;
  onNotice?: (message: string) => void;
}): Promise<UpResult> {
  const names = wantedNames(opts);
  const root = resolve(opts.root);
  const paths = targetPaths(root);
  const registry = await readRegistry(root);
  await ensureEngine(keelPackageRoot(), opts.onProgress);
  const existing = await listTargets(root);
  const distros = names.map((n) => opts.distro ?? existing.get(n)?.distro ?? registry.targets[n]?.distro ?? DEFAULT_DISTRO);
  refuseOtherDistro(names, distros, existing);
  // KEEL_TARGET_IMAGE: another image built on the target image (tests use one with the stack's
  // packages preinstalled, scripts/build-warm-image.sh); the engine must still be there.
  const images: UpContext['images'] = {};
  for (const d of new Set(distros)) {
    const base = await ensureImage(keelPackageRoot(), d, opts.onProgress);
    images[d] = process.env.KEEL_TARGET_IMAGE || base;
  }
  const key = await ensureClientKey(paths.keyFile);

  const notices: string[] = [];
  const taken = new Set(Object.values(registry.targets).flatMap((t) => PORT_KINDS.map((k) => t.ports[k])));
  for (const c of existing.values()) for (const p of Object.values(c.fixed)) taken.add(p);
  const ctx: UpContext = { root, images, taken, notice: (m) => (notices.push(m), opts.onNotice?.(m)) };
  await ensureNetwork(root);
  const ports = await Promise.all(names.map((n, i) => ensureTarget(ctx, n, distros[i]!, existing.get(n), registry.targets[n]?.ports)));
  names.forEach((n, i) => (registry.targets[n] = { ...registry.targets[n], ports: ports[i]!, distro: distros[i]! }));
  await writeRegistry(root, registry); // before waiting for the targets: the ports are theirs now

  const after = await listTargets(root);
  const hosts = names.map((name, i): TargetHost => {
    const c = after.get(name);
    if (!c || c.state !== 'running' || !samePorts(c.live, ports[i]!)) {
      throw new DockerEngineError(['docker', 'inspect', containerName(root, name)], null, `${name} is ${c?.state ?? 'missing'} after start`);
    }
    return hostOf(name, c.container, ports[i]!, distros[i]!);
  });
  await Promise.all(hosts.map((h) => joinNetwork(root, h.name, h.container, after.get(h.name)!)));
  const prepared = await Promise.all(hosts.map((h) => prepareTarget(h.container, key.publicKey, h.port)));
  hosts.forEach((h, i) => (registry.targets[h.name]!.hostKey = prepared[i]!.hostKey));
  await writeRegistry(root, registry);
  await writeAtomic(paths.knownHostsFile, renderKnownHosts(registry), 0o644);
  // inventories/local.yaml is keel's own quick inventory until someone writes their own there.
  const current = await readFile(paths.inventoryFile, 'utf8').catch(() => undefined);
  if (current === undefined || current.startsWith(GENERATED_HEADER)) await writeIfChanged(paths.inventoryFile, renderLocalInventory({ ...paths, hosts }));
  return { hosts, notices, ...paths };
}

/** The project's Docker network: `keel-<hash of the project root>`. */
export function networkName(root: string): string {
  return `keel-${rootHash(root).slice(0, 10)}`;
}

async function ensureNetwork(root: string): Promise<void> {
  const name = networkName(root);
  const found = await docker(['network', 'ls', '-q', '--filter', `name=^${name}$`]);
  if (!found.trim()) await docker(['network', 'create', '--label', `${LABEL_ROOT}=${rootHash(root)}`, name], { context: `creating network ${name}` });
}

/** A container made before targets had a network (or re-attached after `docker network rm`). */
async function joinNetwork(root: string, alias: string, container: string, c: Inspected): Promise<void> {
  const net = networkName(root);
  if (c.networks.includes(net)) return;
  await docker(['network', 'connect', '--alias', alias, net, container], { context: `connecting ${alias} to ${net}` });
}

function hostOf(name: string, container: string, ports: TargetPorts, distro: Distro): TargetHost {
  return { name, container, address: TARGET_ADDRESS, port: ports.ssh, ports, urls: targetUrls(ports), distro };
}

/** A target keeps its release: another one is a new machine, made on purpose. */
function refuseOtherDistro(names: string[], distros: Distro[], existing: Map<string, Inspected>): void {
  const other = names.filter((n, i) => existing.has(n) && existing.get(n)!.distro !== distros[i]);
  if (!other.length) return;
  const runs = other.map((n) => `${n} runs ${existing.get(n)!.distro}`).join(', ');
  const wanted = distros[names.indexOf(other[0]!)];
  const list = other.join(' ');
  throw new ConfigError(`${runs}, not ${wanted}: a target keeps the release it was made with`, undefined, {
    hint: `to make it again on ${wanted} (its state is lost): keel target down ${list}, then keel target up ${list} --distro ${wanted}`,
  });
}

/** known_hosts for every recorded target whose host key keel has read. */
function renderKnownHosts(registry: Registry): string {
  const lines = Object.entries(registry.targets)
    .filter(([, t]) => t.hostKey)
    .map(([, t]) => knownHostsLine(TARGET_ADDRESS, t.ports.ssh, t.hostKey!));
  return lines.join('\n') + '\n';
}

async function writeIfChanged(file: string, content: string): Promise<void> {
  const old = await readFile(file, 'utf8').catch(() => undefined);
  if (old !== content) await writeAtomic(file, content, 0o644);
}

/**
 * Remove the named containers (all of this project's without names), in any state. Their
 * records stay, so the next `up` re-creates them on the same ports; `forget` drops the
 * records too (the ports are given up). The key and known_hosts stay.
 */
export async function targetDown(opts: { root: string; names?: string[]; forget?: boolean }): Promise<{ removed: string[]; forgotten: string[] }> {
  const root = resolve(opts.root);
  const registry = await readRegistry(root);
  const existing = await listTargets(root);
  const names = opts.names?.length ? [...new Set(opts.names)] : [...new Set([...existing.keys(), ...(opts.forget ? Object.keys(registry.targets) : [])])];
  const unknown = names.filter((n) => !existing.has(n) && !registry.targets[n]);
  if (unknown.length) {
    const known = [...new Set([...existing.keys(), ...Object.keys(registry.targets)])].sort(compareNames);
    throw new ConfigError(`unknown target${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')} (targets: ${known.join(', ') || 'none'})`);
  }
  const gone = names.map((n) => existing.get(n)).filter((c): c is Inspected => c !== undefined);
  if (gone.length > 0) await docker(['rm', '-f', '-v', ...gone.map((c) => c.id)]);
  if (gone.length === existing.size) await docker(['network', 'rm', networkName(root)]).catch(() => undefined);
  const forgotten = opts.forget ? names.filter((n) => registry.targets[n]) : [];
  if (forgotten.length) {
    for (const n of forgotten) delete registry.targets[n];
    await writeRegistry(root, registry);
    await writeAtomic(targetPaths(root).knownHostsFile, renderKnownHosts(registry), 0o644);
  }
  return { removed: gone.map((c) => c.container), forgotten };
}

export interface TargetStatus extends TargetHost {
  /** The container's state (running, exited...), or "down" for a recorded target without one. */
  state: string;
}

/** Every target of the project: recorded ones and containers, with their ports and URLs. */
export async function targetStatus(opts: { root: string }): Promise<{ hosts: TargetStatus[] }> {
  const root = resolve(opts.root);
  const [registry, existing] = await Promise.all([readRegistry(root), listTargets(root)]);
  const names = [...new Set([...Object.keys(registry.targets), ...existing.keys()])].sort(compareNames);
  return {
    hosts: names.map((name) => {
      const c = existing.get(name);
      const ports = { ssh: 0, http: 0, https: 0, ...registry.targets[name]?.ports, ...c?.fixed, ...c?.live };
      const distro = c?.distro ?? registry.targets[name]?.distro ?? DEFAULT_DISTRO;
      return { ...hostOf(name, c?.container ?? containerName(root, name), ports, distro), state: c?.state ?? 'down' };
    }),
  };
}
