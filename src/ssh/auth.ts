// Which credentials to offer, in order: the inventory's key files (or the default ones),
// then ssh-agent. Each is tried by ssh2's authHandler; what was tried goes in the error.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthHandlerMiddleware, ParsedKey } from 'ssh2';
import { HostUnreachableError } from '../errors.js';
import type { Connection } from '../inventory/types.js';

export const PASSPHRASE_ENV = 'KEEL_SSH_KEY_PASSPHRASE';
/** The private key itself (not a path), for CI: a secret becomes this variable, no file. */
export const PRIVATE_KEY_ENV = 'KEEL_SSH_PRIVATE_KEY';

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

type Parsed = ReturnType<typeof ssh2.utils.parseKey>;

/** ssh2's parse of a key, once per key and passphrase: every host of a run (1,000 in a fleet)
 *  offers the same key, and ssh2 parsed it again for each connection. The parsed key goes to
 *  ssh2, which takes a parsed key as it is. Keyed by the key's bytes, so a file that changes
 *  is parsed again. */
function parseKeyOnce(data: Buffer, passphrase: string | undefined): Parsed {
  const id = `${passphrase ?? ''}\0${data.toString('latin1')}`;
  let parsed = parsedKeys.get(id);
  if (parsed === undefined) {
    parsed = ssh2.utils.parseKey(data, passphrase);
    if (parsedKeys.size >= 64) parsedKeys.clear();
    parsedKeys.set(id, parsed);
  }
  return parsed;
}

const parsedKeys = new Map<string, Parsed>();

/** What ssh2 is given for a key: the parsed key when it is one, else the bytes as read. */
function keyFor(data: Buffer, parsed: Parsed): ParsedKey | Buffer {
  return parsed instanceof Error || Array.isArray(parsed) ? data : parsed;
}

export function defaultKeyFiles(): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(homedir(), '.ssh', f));
}

export async function planAuth(conn: Connection, env: NodeJS.ProcessEnv = process.env): Promise<AuthPlan> {
  const agentSocket = conn.agent ? env.SSH_AUTH_SOCK : undefined;
  const passphrase = env[PASSPHRASE_ENV] || undefined;
  const explicit = conn.keyFiles.length > 0;
  const files = explicit ? conn.keyFiles : defaultKeyFiles();
  const plan: AuthPlan = { methods: [], skipped: [] };
  const fromEnv = env[PRIVATE_KEY_ENV]?.trim();
  if (fromEnv) {
    // A CI secret pasted with Windows line ends or without its last newline still reads.
    const data = Buffer.from(fromEnv.replace(/\r\n/g, '\n') + '\n');
    const parsed = parseKeyOnce(data, passphrase);
    if (parsed instanceof Error) {
      // Never the value: it is a private key, or a typo of one.
      throw new KeyFileProblem(
        `$${PRIVATE_KEY_ENV} does not hold a private key ssh2 can read (${parsed.message})`,
        'put the whole key in it, from its -----BEGIN line to its -----END line' +
          (/encrypt|passphrase/i.test(parsed.message) ? `, and its passphrase in ${PASSPHRASE_ENV}` : ''),
      );
    }
    plan.methods.push({
      label: `key from $${PRIVATE_KEY_ENV}`,
      method: { type: 'publickey', username: conn.user, key: keyFor(data, parsed), passphrase },
    });
  }

  for (const file of files) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (err) {
      // Default keys are only tried "if present"; a key the inventory names must exist, unless
      // the key comes from the environment (a CI runner has not the file a laptop has).
      if ((!explicit || fromEnv) && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new KeyFileProblem(
        `cannot read key file ${file}: ${(err as Error).message}`,
        `or give the key itself in $${PRIVATE_KEY_ENV} (in CI, from a secret)`,
      );
    }
    const parsed = parseKeyOnce(data, passphrase);
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
      method: { type: 'publickey', username: conn.user, key: keyFor(data, parsed), passphrase },
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

/** The plan for one hop (`who`, for messages), or a host error that says what to fix: a key
 *  file that cannot be used, or nothing at all to offer. */
export async function hopCredentials(hop: Connection, who: string, hostName: string): Promise<AuthPlan> {
  let plan: AuthPlan;
  try {
    plan = await planAuth(hop);
  } catch (err) {
    if (err instanceof KeyFileProblem) {
      throw new HostUnreachableError(hostName, `cannot authenticate to ${who}: ${err.message}`, { hint: err.hint });
    }
    throw err;
  }
  if (!plan.methods.length) {
    const skipped = plan.skipped.length ? ` (skipped: ${plan.skipped.join(', ')})` : '';
    throw new HostUnreachableError(hostName, `no credentials to offer ${who}${skipped}`, {
      hint: `name a key file in the inventory, create ~/.ssh/id_ed25519, start ssh-agent (SSH_AUTH_SOCK), or (in CI) set ${PRIVATE_KEY_ENV} to the key${
        plan.skipped.length ? ` or set ${PASSPHRASE_ENV}` : ''
      }`,
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
    const allowed = (type: string) => !authsLeft || authsLeft.includes(type === 'agent' ? 'publickey' : (type as never));
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

type Ssh2Error = Error & { level?: string };

/** An unusable agent or a key that cannot sign: ssh2 reports it as an 'error', but goes on with
 *  the next method. Not a failure yet: its message (this) goes in the one that may follow. */
export function passingAuthProblem(err: Ssh2Error): string | undefined {
  if (err.level === 'agent') return `ssh-agent: ${err.message}`;
  if (err.level === 'client-authentication' && err.message !== 'All configured authentication methods failed') return err.message;
  return undefined;
}

/** Every method was refused: what was tried, skipped or unusable (`problems`), and what the host accepts. */
export function authFailedError(
  hop: Connection,
  who: string,
  hostName: string,
  plan: AuthPlan,
  state: AuthState,
  problems: string[],
  cause: Error,
): HostUnreachableError {
  const tried = [...state.tried, ...plan.skipped.map((s) => `${s}, skipped`), ...problems];
  const offered = state.serverMethods?.length ? `; the host accepts: ${state.serverMethods.join(', ')}` : '';
  return new HostUnreachableError(hostName, `authentication failed for ${who} (tried: ${tried.join('; ') || 'nothing'}${offered})`, {
    cause,
    hint: `check that one of these keys is in ~${hop.user}/.ssh/authorized_keys on the host, or set the key file in the inventory`,
  });
}
