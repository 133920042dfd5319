// Projects for integration tests: a temporary directory with inventories/itest.yaml (what
// provisionItest runs) and the test-only roles a test adds beside the built-in ones.
//
//   root = tempProject('roles-app');
//   writeRole(root, 'itjobs', ITJOBS_ROLE, { 'files/jobs.py': JOBS_PY });
//   writeInventory(root, target, { roles: ['base', 'itjobs'], vars: { app_user: 'acme' } });
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { initVault, setSecret } from '../../src/vault/operations.js';
import { vaultContext } from '../../src/vault/store.js';
import type { TestTarget } from './target.js';

/** A new project directory (keel-<name>-XXXXXX) with an empty inventories/; the test removes it. */
export function tempProject(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `keel-${name}-`));
  mkdirSync(join(dir, 'inventories'));
  return dir;
}

/** roles/<name>/role.yaml, and `files` by their path in the role ('files/jobs.py'). */
export function writeRole(root: string, name: string, roleYaml: string, files: Record<string, string> = {}): void {
  const dir = join(root, 'roles', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'role.yaml'), roleYaml);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

export interface OneHostInventory {
  /** Role names or instances (`{role, name, vars}`). */
  roles: unknown[];
  /** The host's name (default web1). */
  host?: string;
  /** A group that holds the roles, with the host in it; without one the roles are the host's. */
  group?: string;
  /** Inventory variables: an object, or YAML lines indented by two spaces, written line for
   *  line (tests check the line numbers of errors). */
  vars?: Record<string, unknown> | string;
  /** How the host logs in, as YAML flow keys (default `user: root`). */
  login?: string;
}

/** inventories/itest.yaml: one host on target `t`, over SSH with the test key and `t`'s known_hosts. */
export function writeInventory(root: string, t: TestTarget, inv: OneHostInventory): void {
  const roles = `[${inv.roles.map(flow).join(', ')}]`;
  const host = inv.host ?? 'web1';
  const lines = [`known_hosts: ${t.knownHostsFile}`];
  if (inv.vars !== undefined) {
    const vars = typeof inv.vars === 'string' ? inv.vars : stringify(inv.vars).trimEnd().replace(/^/gm, '  ');
    lines.push('vars:', vars);
  }
  const membership = inv.group ? `groups: [${inv.group}]` : `roles: ${roles}`;
  lines.push('hosts:', `  ${host}: {address: 127.0.0.1, port: ${t.port}, ${inv.login ?? 'user: root'}, key: ${t.keyFile}, ${membership}}`);
  if (inv.group) lines.push('groups:', `  ${inv.group}: {roles: ${roles}}`);
  writeFileSync(join(root, 'inventories', 'itest.yaml'), lines.join('\n') + '\n');
}

/** secrets/itest.age in `root` (made on first use) with `secrets` set, under passphrase `password`. */
export async function writeSecrets(root: string, password: string, secrets: Record<string, string>): Promise<void> {
  const vc = vaultContext(root, 'itest', { interactive: false, vars: { KEEL_VAULT_PASSWORD: password }, logN: 10 });
  if (!existsSync(vc.paths.vault)) await initVault(vc, []);
  for (const [key, value] of Object.entries(secrets)) await setSecret(vc, key, value);
}

/** Gives keel's runs in this test file the vault's passphrase; the result puts
 *  KEEL_VAULT_PASSWORD back as it was (call it in afterAll). */
export function setVaultPassword(password: string): () => void {
  const saved = process.env.KEEL_VAULT_PASSWORD;
  process.env.KEEL_VAULT_PASSWORD = password;
  return () => {
    if (saved === undefined) delete process.env.KEEL_VAULT_PASSWORD;
    else process.env.KEEL_VAULT_PASSWORD = saved;
  };
}

function flow(value: unknown): string {
  return typeof value === 'string' ? value : stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trimEnd();
}
