// `keel secrets edit`: the plaintext lives only in a private temporary directory while the
// editor runs, and is wiped on every way out (see plaintext-dir.ts).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ConfigError, KeelError } from '../errors.js';
import { parseSecrets } from './document.js';
import { withPlaintextDir } from './plaintext-dir.js';
import { type VaultContext, encryptionTarget, requireVault, saveVault } from './store.js';

export interface EditorResult {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EditOptions {
  /** $EDITOR, possibly with arguments ("code -w"); vi when unset. */
  editor?: string;
  /** Asked after invalid YAML when interactive: reopen the editor? */
  askReopen?: (problem: string) => Promise<boolean>;
  /** Where the private directory goes (tests); /dev/shm or the system temp dir otherwise. */
  tempBase?: string;
  /** Called with the decrypted secrets before anything can be printed (the redactor). */
  onSecrets?: (data: Record<string, unknown>) => void;
}

export async function editVault(vc: VaultContext, opts: EditOptions = {}): Promise<{ changed: boolean }> {
  const opened = await requireVault(vc);
  const original = opened.text;
  try {
    opts.onSecrets?.(parseSecrets(original, vc.paths.display).data);
  } catch {
    // a vault that holds invalid YAML can still be opened to be fixed
  }
  const editor = opts.editor?.trim() || 'vi';
  const edited = await withPlaintextDir(async (dir) => {
    const file = dir.write(`${vc.env}.yaml`, original);
    for (;;) {
      dir.editorRunning = true;
      let result: EditorResult;
      try {
        result = await runEditor(editor, file);
      } finally {
        dir.editorRunning = false;
      }
      if (result.code !== 0) {
        const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`;
        throw new KeelError(`the editor (${editor}) ${how}; ${vc.paths.display} is unchanged`);
      }
      const text = readFileSync(file, 'utf8');
      if (text === original) return null;
      try {
        const { data } = parseSecrets(text, `${vc.paths.display} (plaintext)`);
        opts.onSecrets?.(data);
        return text;
      } catch (err) {
        if (!(err instanceof ConfigError) || !vc.interactive || !opts.askReopen) throw abandon(err, vc.paths.display);
        if (!(await opts.askReopen(err.message))) throw abandon(err, vc.paths.display);
      }
    }
  }, opts.tempBase);
  if (edited === null) return { changed: false };
  await saveVault(vc, edited, await encryptionTarget(vc, opened), { keepUnlocked: true });
  return { changed: true };
}

function abandon(err: unknown, display: string): unknown {
  if (err instanceof ConfigError) {
    return new ConfigError(`${err.message}; your edit was discarded and ${display} is unchanged`, undefined, {
      hint: err.hint,
    });
  }
  return err;
}

/** Runs the editor the way git does, through sh, so $EDITOR may hold arguments and quotes;
 *  `exec` so that an editor killed by a signal is reported as such. */
export function runEditor(editor: string, file: string): Promise<EditorResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `exec ${editor} "$@"`, editor, file], { stdio: 'inherit' });
    child.on('error', (err) => reject(new KeelError(`cannot start the editor (${editor}): ${err.message}`)));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}
