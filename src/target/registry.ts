// The record of a project's local targets, `.keel/target/targets.json`: each target's name,
// the host ports its SSH, HTTP and HTTPS are published on (127.0.0.1 only) and its SSH host
// key. `keel target up` writes it; an inventory host with `target: web1` reads it, so a user's
// inventory names a target and survives restarts and re-creation. Kept free of Docker code:
// the inventory loads it.
import { readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { ConfigError, type SourceLocation } from '../errors.js';
import type { RawConnection, Ref } from '../inventory/raw.js';
import { writeAtomic } from './keys.js';

export const TARGET_ADDRESS = '127.0.0.1';
export const TARGET_USER = 'root';

/** Host ports on 127.0.0.1 for the container's 22, 80 and 443. */
export interface TargetPorts {
  ssh: number;
  http: number;
  https: number;
}

export const CONTAINER_PORTS: TargetPorts = { ssh: 22, http: 80, https: 443 };
export const PORT_KINDS = ['ssh', 'http', 'https'] as const;
export type PortKind = (typeof PORT_KINDS)[number];

/** The Debian releases a target can run (scripts/build-target-image.sh builds each). */
export const DISTROS = ['bookworm', 'trixie'] as const;
export type Distro = (typeof DISTROS)[number];
export const DEFAULT_DISTRO: Distro = 'bookworm';

export function checkDistro(d: string): Distro {
  if ((DISTROS as readonly string[]).includes(d)) return d as Distro;
  throw new ConfigError(`--distro must be one of ${DISTROS.join(', ')} (Debian 12, Debian 13), got "${d}"`);
}

export interface TargetRecord {
  ports: TargetPorts;
  /** The Debian release it runs (bookworm when not recorded: targets from before releases). */
  distro?: Distro;
  /** `ssh-ed25519 AAAA...` read from the container the last time it came up. */
  hostKey?: string;
}

export interface Registry {
  version: 1;
  targets: Record<string, TargetRecord>;
}

/** Where keel's target files live inside a project. */
export function targetPaths(root: string) {
  const dir = join(resolve(root), '.keel', 'target');
  return {
    dir,
    registryFile: join(dir, 'targets.json'),
    keyFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    inventoryFile: join(resolve(root), 'inventories', 'local.yaml'),
  };
}

/** A target name is also its hostname and part of its container name. */
export const TARGET_NAME = /^[a-z][a-z0-9-]{0,30}$/;

export function checkTargetName(name: string): void {
  if (!TARGET_NAME.test(name)) {
    throw new ConfigError(`"${name}" is not a usable target name: lower-case letters, digits and "-", starting with a letter, at most 31 characters`);
  }
}

export async function readRegistry(root: string): Promise<Registry> {
  const file = targetPaths(root).registryFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, targets: {} };
    throw err;
  }
  const shown = relative(resolve(root), file);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `not valid JSON: ${(err as Error).message}`,
      { file: shown },
      {
        hint: `remove it to start over (the targets get new ports on the next keel target up)`,
      },
    );
  }
  return validate(data, shown);
}

function validate(data: unknown, shown: string): Registry {
  const bad = (why: string) =>
    new ConfigError(
      `not a keel target record: ${why}`,
      { file: shown },
      { hint: 'remove it to start over (the targets get new ports on the next keel target up)' },
    );
  const o = data as { version?: unknown; targets?: unknown };
  if (typeof o !== 'object' || o === null || o.version !== 1) throw bad('expected {"version": 1, "targets": {...}}');
  if (typeof o.targets !== 'object' || o.targets === null) throw bad('"targets" must be a mapping');
  for (const [name, rec] of Object.entries(o.targets as Record<string, unknown>)) {
    const ports = (rec as { ports?: Record<string, unknown> } | null)?.ports;
    const ok =
      TARGET_NAME.test(name) && ports && PORT_KINDS.every((k) => Number.isInteger(ports[k]) && (ports[k] as number) > 0 && (ports[k] as number) < 65536);
    if (!ok) throw bad(`target "${name}" needs ports {ssh, http, https}, each a port number`);
    const distro = (rec as { distro?: unknown }).distro;
    if (distro !== undefined && !(DISTROS as readonly unknown[]).includes(distro)) throw bad(`target "${name}": distro must be one of ${DISTROS.join(', ')}`);
  }
  return o as Registry;
}

export async function writeRegistry(root: string, registry: Registry): Promise<void> {
  const sorted = Object.fromEntries(Object.entries(registry.targets).sort(([a], [b]) => compareNames(a, b)));
  await writeAtomic(targetPaths(root).registryFile, JSON.stringify({ version: 1, targets: sorted }, null, 2) + '\n', 0o644);
}

/** target2 before target10; otherwise alphabetical. */
export function compareNames(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** `http://127.0.0.1:PORT/` and `https://...` for a target's ports. */
export function targetUrls(ports: TargetPorts): { http: string; https: string } {
  return { http: `http://${TARGET_ADDRESS}:${ports.http}/`, https: `https://${TARGET_ADDRESS}:${ports.https}/` };
}

/** What an inventory host with `target: NAME` gets: the values `keel target up` recorded. */
export interface TargetConnection {
  address: string;
  port: number;
  user: string;
  keyFile: string;
  knownHostsFile: string;
}

/**
 * The connection of the local target `name` of the project at `root`; a ConfigError at
 * `location` (the inventory line) when no such target was ever brought up.
 */
export async function targetConnection(root: string, name: string, location: SourceLocation): Promise<TargetConnection> {
  const registry = await readRegistry(root);
  const record = registry.targets[name];
  if (!record) {
    const known = Object.keys(registry.targets);
    throw new ConfigError(`unknown local target "${name}" (${known.length ? `known targets: ${known.join(', ')}` : 'no local targets yet'})`, location, {
      hint: TARGET_NAME.test(name) ? `start it: keel target up ${name}` : 'a target name uses lower-case letters, digits and "-"',
    });
  }
  const paths = targetPaths(root);
  return { address: TARGET_ADDRESS, port: record.ports.ssh, user: TARGET_USER, keyFile: paths.keyFile, knownHostsFile: paths.knownHostsFile };
}

/** The connection layer of an inventory host with `target: NAME` (see src/inventory/resolve.ts). */
export async function inventoryTarget(root: string, ref: Ref): Promise<RawConnection> {
  const t = await targetConnection(root, ref.name, ref.location);
  return { address: t.address, port: t.port, user: t.user, keys: [t.keyFile], knownHostsFile: t.knownHostsFile, localTarget: ref.name };
}
