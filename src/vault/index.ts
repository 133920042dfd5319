// The vault as the rest of keel sees it: secrets/<env>.age decrypted to a mapping. The engine
// exposes it to templates as `secrets.<key>` and adds every value to the Redactor.
import { existsSync } from 'node:fs';
import { vaultPaths } from './paths.js';

/** The decrypted secrets of an environment, or null when secrets/<env>.age does not exist.
 *  Keys come from the environment, key files or (when interactive) a passphrase prompt. */
export async function loadSecrets(
  root: string,
  env: string,
  opts: { interactive: boolean },
): Promise<Record<string, unknown> | null> {
  // Most runs without a vault never load age-encryption and the vault code.
  if (!existsSync(vaultPaths(root, env).vault)) return null;
  const [{ parseSecrets }, { ttyPrompt }, { openVault, vaultContext }] = await Promise.all([
    import('./document.js'),
    import('./prompt.js'),
    import('./store.js'),
  ]);
  const vc = vaultContext(root, env, { interactive: opts.interactive, prompt: ttyPrompt });
  const opened = await openVault(vc);
  if (!opened) return null;
  return parseSecrets(opened.text, vc.paths.display).data;
}

export { vaultPaths } from './paths.js';
export { KEY_SEGMENT } from './document.js';
