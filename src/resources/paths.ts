// Small helpers shared by path-based resource types (file, directory, symlink, template).
import { ConfigError } from '../errors.js';
import { sh, type Shell } from '../shell/quote.js';

export function requireAbsolute(path: string, what: string): string {
  if (!path.startsWith('/')) throw new ConfigError(`${what} must be an absolute path, got "${path}"`);
  if (path.includes('\n')) throw new ConfigError(`${what} cannot contain a newline`);
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}

/** Modes are written as octal strings ("0644", "644", "u=rw" is not supported). A number is
 *  read by its written digits: YAML 1.2 (the `yaml` package's default) parses `mode: 0644`
 *  as the integer 644, which means 0644 to the author, never decimal 644 (= 01204). */
export function normalizeMode(mode: string | number | undefined): string | undefined {
  if (mode === undefined) return undefined;
  const s = typeof mode === 'number' ? String(mode) : mode.trim();
  if (!/^[0-7]{3,4}$/.test(s)) throw new ConfigError(`mode must be octal like "0644", got "${mode}"`);
  return parseInt(s, 8).toString(8).padStart(4, '0');
}

/** stat's %a prints "644"; compare modes as numbers. */
export function sameMode(statMode: string | undefined, wanted: string): boolean {
  return statMode !== undefined && parseInt(statMode, 8) === parseInt(wanted, 8);
}

/** An owner given as a number or a name matches the path's id, or its name (stat.ts withNames:
 *  the wanted name when the id is that name's). */
export function sameOwner(name: string | undefined, id: string | undefined, wanted: string | number): boolean {
  const w = String(wanted);
  return w === name || w === id;
}

export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/**
 * Shell that stops a step when `dir` is not a directory, naming it and the fix: mktemp or ln
 * would fail with an error that says neither. `dir` and `path` are values, or shell words
 * computed on the host (a symlink's resolved target). `what` is keel's own word ("file").
 */
export function requireDirectory(dir: string | Shell, path: string | Shell, what: string): Shell {
  const missing = `keel: %s does not exist: add a directory resource for it before this ${what}\\n`;
  const notDir = 'keel: %s is not a directory: cannot put %s in it\\n';
  return sh`if [ ! -d ${dir} ]; then if [ -e ${dir} ]; then printf ${notDir} ${dir} ${path} >&2; else printf ${missing} ${dir} >&2; fi; exit 1; fi`;
}
