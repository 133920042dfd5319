// Where an environment's vault and its keys live, relative to the project root.
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

export interface VaultPaths {
  /** secrets/<env>.age: the encrypted YAML, committed. */
  vault: string;
  /** secrets/<env>.recipients: age public keys, one per line, committed. */
  recipients: string;
  /** secrets/<env>.password: the passphrase, git-ignored. */
  password: string;
  /** secrets/<env>.key: an age identity file, git-ignored. */
  key: string;
  /** The vault path as shown to people (relative to the project root). */
  display: string;
}

const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function vaultPaths(root: string, env: string): VaultPaths {
  if (!ENV_NAME.test(env) || env.includes('..')) {
    throw new ConfigError(`invalid environment name '${env}': use letters, digits, '_', '-' and '.' (not starting with one of the last three)`);
  }
  const dir = join(root, 'secrets');
  return {
    vault: join(dir, `${env}.age`),
    recipients: join(dir, `${env}.recipients`),
    password: join(dir, `${env}.password`),
    key: join(dir, `${env}.key`),
    display: `secrets/${env}.age`,
  };
}
