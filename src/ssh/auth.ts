// Which credentials to offer, in order: the inventory's key files (or the default ones),
// then ssh-agent. Each is tried by ssh2's authHandler; what was tried goes in the error.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware } from 'ssh2';
import type { Connection } from '../inventory/types.js';

export const PASSPHRASE_ENV = 'KEEL_SSH_KEY_PASSPHRASE';

export interface AuthMethod {
  /** For messages: `key ~/.ssh/id_ed25519`, `ssh-agent`. Never contains secrets. */
  label: string;
  method: AnyAuthMethod;
}

export interface AuthPlan {
  methods: AuthMethod[];
  /** Keys that could not be used (encrypted without a passphrase while an agent may hold them). */
  skipped: string[];
}

/** A key file could not be used; the caller wraps it into a host error. */
export class KeyFileProblem extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export function defaultKeyFiles(): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f));
}

export async function planAuth(
  conn: Connection,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AuthPlan> {
  const agentSocket = conn.agent ? env.SSH_AUTH_SOCK : undefined;
  const passphrase = env[PASSPHRASE_ENV] || undefined;
  const explicit = conn.keyFiles.length > 0;
  const files = explicit ? conn.keyFiles : defaultKeyFiles();
  const plan: AuthPlan = { methods: [], skipped: [] };

  for (const file of files) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (err) {
      // Default keys are only tried "if present"; a key the inventory names must exist.
      if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new KeyFileProblem(`cannot read key file ${file}: ${(err as Error).message}`);
    }
    const parsed = ssh2.utils.parseKey(data, passphrase);
    if (parsed instanceof Error) {
      const encrypted = /encrypted|passphrase|decrypt|bad auth/i.test(parsed.message);
      if (encrypted && passphrase === undefined) {
        if (agentSocket || !explicit) {
          plan.skipped.push(`key ${file} (encrypted, no ${PASSPHRASE_ENV})`);
          continue;
        }
        throw new KeyFileProblem(
          `key file ${file} is encrypted and no passphrase was given`,
          `set ${PASSPHRASE_ENV}, or load the key into ssh-agent (ssh-add) and enable the agent`,
        );
      }
      if (encrypted) {
        throw new KeyFileProblem(`cannot decrypt key file ${file} with the passphrase in ${PASSPHRASE_ENV}`);
      }
      throw new KeyFileProblem(`key file ${file} is not a private key ssh2 can read: ${parsed.message}`);
    }
    plan.methods.push({
      label: `key ${file}`,
      method: { type: 'publickey', username: conn.user, key: data, passphrase },
    });
  }
  if (agentSocket) {
    plan.methods.push({
      label: 'ssh-agent',
      method: { type: 'agent', username: conn.user, agent: agentSocket },
    });
  }
  return plan;
}

export interface AuthState {
  /** Labels of the methods offered so far. */
  tried: string[];
  /** Methods the server said it accepts (after the first refusal). */
  serverMethods?: string[];
}

/**
 * An ssh2 authHandler that offers the plan's methods in order and records each one offered
 * in `state.tried` (so a failure can say what was attempted).
 */
export function authHandler(plan: AuthPlan, state: AuthState): AuthHandlerMiddleware {
  let next = 0;
  const { tried } = state;
  return (authsLeft, _partial, callback) => {
    if (authsLeft) state.serverMethods = authsLeft;
    // authsLeft is null on the first call (ssh2 has not asked the server yet).
    const allowed = (type: string) =>
      !authsLeft || authsLeft.includes(type === 'agent' ? 'publickey' : (type as never));
    while (next < plan.methods.length) {
      const m = plan.methods[next++]!;
      if (!allowed(m.method.type)) continue;
      tried.push(m.label);
      callback(m.method);
      return;
    }
    // ssh2 ends authentication when the handler answers `false` (its typings omit it).
    callback(false as unknown as AnyAuthMethod);
  };
}
