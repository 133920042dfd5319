// The Ansible Vault password for values encrypted in an Ansible tree (group_vars/ and
// host_vars/ files read in place by the inventory), from the first of:
//   1. `ansible_vault_password_file:` in keel's YAML inventory (relative to that file),
//   2. $ANSIBLE_VAULT_PASSWORD_FILE (Ansible's own setting; relative to the project root),
//   3. a prompt, when keel runs on a terminal.
// The password is asked or read once per command, only when an encrypted value is met, and
// wiped when the inventory is loaded. A password file is read, not run: an executable one
// (a script, to Ansible) is named in the error if the password does not fit.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, type SourceLocation } from '../errors.js';
import { ansiblePasswordFromFile, decryptAnsibleVault } from './ansible.js';

export interface AnsiblePasswordSources {
  /** `ansible_vault_password_file:` as written, resolved against the inventory's directory. */
  file?: { path: string; shown: string; location?: SourceLocation };
  /** Environment ($ANSIBLE_VAULT_PASSWORD_FILE). */
  env: Record<string, string | undefined>;
  root: string;
  /** Asks on a terminal; absent when keel may not ask. */
  ask?: (prompt: string) => Promise<string>;
}

export interface AnsibleDecrypter {
  /** Decrypts an envelope; `what` names it in messages, `where` is where it is written. */
  decrypt(envelope: Buffer, what: string, where: SourceLocation): Promise<Buffer>;
  /** Zeroes the password, once the inventory is loaded. */
  wipe(): void;
}

const HOW =
  'give keel the Ansible Vault password: ansible_vault_password_file: in the keel inventory (a file holding it, ' +
  'as ansible-playbook --vault-password-file takes it), or $ANSIBLE_VAULT_PASSWORD_FILE, or run keel on a terminal to be asked';

export function ansibleDecrypter(src: AnsiblePasswordSources): AnsibleDecrypter {
  let password: Promise<{ value: Buffer; from: string; script: boolean }> | undefined;
  const obtain = async (what: string, where: SourceLocation) => {
    const file = src.file ?? envFile(src);
    if (file) {
      let content: Buffer;
      try {
        content = readFileSync(file.path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new ConfigError(`cannot read the Ansible Vault password file ${file.shown} (${code === 'ENOENT' ? 'file not found' : code})`, file.location);
      }
      return { value: ansiblePasswordFromFile(content, file.shown), from: file.shown, script: (statSync(file.path).mode & 0o111) !== 0 };
    }
    if (src.ask) return { value: Buffer.from(await src.ask(`Ansible Vault password (for ${what}): `), 'utf8'), from: 'the password given', script: false };
    throw new ConfigError(`${what} is encrypted with Ansible Vault, and keel has no password for it`, located(where), { hint: HOW });
  };
  return {
    async decrypt(envelope, what, where) {
      const p = await (password ??= obtain(what, where));
      try {
        return decryptAnsibleVault(envelope, p.value, what);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const script = p.script ? `; ${p.from} is executable: Ansible would run it as a script, keel reads it as the password itself` : '';
        throw new ConfigError(err.message, located(where), { hint: /password/.test(err.message) ? `the password came from ${p.from}${script}` : err.hint });
      }
    },
    wipe() {
      void password?.then((p) => p.value.fill(0)).catch(() => undefined);
    },
  };
}

function envFile(src: AnsiblePasswordSources): AnsiblePasswordSources['file'] {
  const v = src.env['ANSIBLE_VAULT_PASSWORD_FILE'];
  if (!v) return undefined;
  return { path: path.resolve(src.root, v), shown: `$ANSIBLE_VAULT_PASSWORD_FILE (${v})` };
}

/** A whole file's location is its name, already in the message: no prefix then. */
function located(where: SourceLocation): SourceLocation | undefined {
  return where.line === undefined ? undefined : where;
}
