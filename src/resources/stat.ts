// What file and directory share: one `stat` for every path of the run, its parsing, and the
// owner[:group] spec chown takes.
import { sh, type Shell } from '../shell/quote.js';
import type { Facts } from './types.js';

/** One stat for all paths: `path\ttype\tuser\tuid\tgroup\tgid\tmode` per existing path. */
export function statProbe(paths: string[]): Shell {
  return sh`stat --printf '%n\\t%F\\t%U\\t%u\\t%G\\t%g\\t%a\\n' -- ${paths} 2>/dev/null\n`;
}

/** One line of statProbe's output, or undefined for anything else. */
export function parseStatLine(line: string): [string, Facts] | undefined {
  const [path, type, user, uid, group, gid, mode] = line.split('\t');
  if (!path || mode === undefined) return undefined;
  return [path, { type: type ?? '', user: user ?? '', uid: uid ?? '', group: group ?? '', gid: gid ?? '', mode }];
}

export function parseStat(output: string): Map<string, Facts> {
  const byPath = new Map<string, Facts>();
  for (const line of output.split('\n')) {
    const parsed = parseStatLine(line);
    if (parsed) byPath.set(...parsed);
  }
  return byPath;
}

/** `owner:group`, `owner` or `:group` for chown. */
export function ownerSpec(p: { owner?: string | number; group?: string | number }): string {
  return `${p.owner ?? ''}${p.group !== undefined ? ':' + p.group : ''}`;
}
