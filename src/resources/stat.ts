// What file and directory share: one `stat` for every path of the run, its parsing, and the
// owner[:group] spec chown takes.
//
// stat prints owners as numbers. Its %U and %G would look each path's owner up by name, and
// glibc reads /etc/passwd and /etc/group again for every path: three quarters of the stat's
// time on a host with 250 paths. The owners and groups the resources ask for by name are
// looked up instead, one `getent` for all users and one for all groups (root is 0 everywhere,
// so a run that wants only root looks nothing up). A path is owned by a wanted name when its
// number is that name's; the name is also what the reasons show (`owner uid 1001 -> app` when the
// present owner is not one of the names asked for).
import { joinShell, sh, type Shell } from '../shell/quote.js';
import { NO_FACTS, type Facts } from './types.js';
import { unique } from '../lists.js';

/** What a path's owner and group are asked to be: a name or a number. */
export interface Owned {
  owner?: string | number;
  group?: string | number;
}

const NUMBER = /^\d+$/;

/** The names among `wanted` that need a lookup: not a number, not root. */
function names(wanted: (string | number | undefined)[]): string[] {
  return unique(wanted.filter((w): w is string => typeof w === 'string' && w !== 'root' && !NUMBER.test(w)));
}

/** One stat for all paths, `path\ttype\tuid\tgid\tmode` per existing path; then the ids of the
 *  owners and groups `wanted` names (`--users` and `--groups`: getent's lines). `args`: the
 *  paths as the script has them already (`"$@"`), instead of written out again. */
export function statProbe(paths: string[], wanted: Owned[] = [], args: Shell = sh`${paths}`): Shell {
  const parts = [sh`stat --printf '%n\\t%F\\t%u\\t%g\\t%a\\n' -- ${args} 2>/dev/null\n`];
  const users = names(wanted.map((w) => w.owner));
  const groups = names(wanted.map((w) => w.group));
  if (users.length) parts.push(sh`echo --users; getent passwd -- ${users} 2>/dev/null\n`);
  if (groups.length) parts.push(sh`echo --groups; getent group -- ${groups} 2>/dev/null\n`);
  return joinShell(parts, '');
}

/** Name -> id of the users and groups statProbe looked up. */
export interface OwnerIds {
  users: Map<string, string>;
  groups: Map<string, string>;
}

function newOwnerIds(): OwnerIds {
  return { users: new Map([['root', '0']]), groups: new Map([['root', '0']]) };
}

/** A getent line of the `--users` or `--groups` part: `name:x:id:...`. */
function parseOwnerLine(part: 'users' | 'groups', line: string, ids: OwnerIds): void {
  const [name, , id] = line.split(':');
  if (name && id !== undefined && NUMBER.test(id)) ids[part].set(name, id);
}

/** One stat line, or undefined for anything else. */
function parseStatLine(line: string): [string, Facts] | undefined {
  const [path, type, uid, gid, mode] = line.split('\t');
  if (!path || mode === undefined) return undefined;
  return [path, { type: type ?? '', uid: uid ?? '', gid: gid ?? '', mode }];
}

/** statProbe's output: facts by path, and the looked-up ids. */
export function parseStat(output: string): { byPath: Map<string, Facts>; ids: OwnerIds } {
  const byPath = new Map<string, Facts>();
  const ids = newOwnerIds();
  let part: 'stat' | 'users' | 'groups' = 'stat';
  for (const line of output.split('\n')) {
    if (line === '--users' || line === '--groups') part = line === '--users' ? 'users' : 'groups';
    else if (part !== 'stat') parseOwnerLine(part, line, ids);
    else {
      const parsed = parseStatLine(line);
      if (parsed) byPath.set(...parsed);
    }
  }
  return { byPath, ids };
}

/** A path's facts with `user` and `group` named as `p` wants them when its ids are those names'
 *  (root for 0; otherwise empty: the reasons then show the number). */
export function withNames(f: Facts | undefined, p: Owned, ids: OwnerIds): Facts {
  if (!f?.type) return f ?? NO_FACTS;
  return { ...f, user: nameOf(f.uid, p.owner, ids.users), group: nameOf(f.gid, p.group, ids.groups) };
}

function nameOf(id: string | undefined, wanted: string | number | undefined, ids: Map<string, string>): string {
  if (typeof wanted === 'string' && ids.get(wanted) === id) return wanted;
  return id === '0' ? 'root' : '';
}

/** `owner:group`, `owner` or `:group` for chown. */
export function ownerSpec(p: { owner?: string | number; group?: string | number }): string {
  return `${p.owner ?? ''}${p.group !== undefined ? ':' + p.group : ''}`;
}
