// The vault as the rest of keel sees it: secrets/<env>.age decrypted to a mapping. The engine
// exposes it to templates as `secrets.<key>` and adds every value to the Redactor.
import { parseSecrets } from './document.js';
import { ttyPrompt } from './prompt.js';
import { openVault, vaultContext } from './store.js';

/** The decrypted secrets of an environment, or null when secrets/<env>.age does not exist.
 *  Keys come from the environment, key files or (when interactive) a passphrase prompt. */
export async function loadSecrets(
  root: string,
  env: string,
  opts: { interactive: boolean },
): Promise<Record<string, unknown> | null> {
  const vc = vaultContext(root, env, { interactive: opts.interactive, prompt: ttyPrompt });
  const opened = await openVault(vc);
  if (!opened) return null;
  return parseSecrets(opened.text, vc.paths.display).data;
}

export { vaultPaths } from './paths.js';
export { KEY_SEGMENT } from './document.js';
