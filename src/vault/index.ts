// The vault as the rest of keel sees it: secrets/<env>.age decrypted to a mapping. The engine
// exposes it to templates as `secrets.<key>` and adds every value to the Redactor.
import { existsSync } from 'node:fs';
import { vaultPaths } from './paths.js';

/** The decrypted secrets of an environment, or null when secrets/<env>.age does not exist.
 *  Keys come from the environment, key files or (when interactive) a passphrase prompt. */
export async function loadSecrets(root: string, env: string, opts: LoadSecretsOptions): Promise<Record<string, unknown> | null> {
  // Most runs without a vault never load age-encryption and the vault code.
  if (!existsSync(vaultPaths(root, env).vault)) return null;
  const [{ parseSecrets }, { ttyPrompt }, { openVault, vaultContext }] = await Promise.all([
    import('./document.js'),
    import('./prompt.js'),
    import('./store.js'),
  ]);
  const vc = vaultContext(root, env, { interactive: opts.interactive, prompt: ttyPrompt, notice: opts.notice });
  const opened = await openVault(vc, { unlocked: true });
  if (!opened) return null;
  return parseSecrets(opened.text, vc.paths.display).data;
}

export interface LoadSecretsOptions {
  /** May keel ask for a passphrase on the terminal? */
  interactive: boolean;
  /** Told when a key kept by `keel secrets unlock` opens the vault (or was dropped), e.g.
   *  "vault staging: using the unlocked key (until 10:42, ...)". Give it the CLI's stderr;
   *  without it the message goes straight to process.stderr, never nowhere. */
  notice?: (message: string) => void;
}

export { sweepStalePlaintext } from './plaintext-dir.js';
