// directory: a directory with owner, group and mode. One `stat` reports every directory of the
// run. `recurse` is not supported: owner and mode apply to the directory itself only.
import { sh, type Shell } from '../shell/quote.js';
import { ownerSpec, parseStat, statProbe, withNames } from './stat.js';
import { ConfigError } from '../errors.js';
import { change, ok, type Decision, type Facts, type ResourceType } from './types.js';
import { normalizeMode, requireAbsolute, sameMode, sameOwner } from './paths.js';
import { unique } from '../lists.js';

export interface DirectoryParams {
  path: string;
  state?: 'present' | 'absent';
  owner?: string | number;
  group?: string | number;
  mode?: string;
}

export const directoryType: ResourceType<DirectoryParams> = {
  name: 'directory',
  doc: {
    summary: 'A directory with owner, group and mode (parents are created).',
    example: '- directory: {path: /srv/app/logs, owner: app, group: app, mode: "0750"}',
  },
  schema: {
    type: 'object',
    required: ['path'],
    additionalProperties: false,
    properties: {
      path: { description: 'absolute path', type: 'string', minLength: 1 },
      state: { description: 'present (default) or absent (removed with its content)', type: 'string', enum: ['present', 'absent'] },
      owner: { description: 'user name or uid', type: ['string', 'integer'] },
      group: { description: 'group name or gid', type: ['string', 'integer'] },
      mode: { description: 'octal mode, e.g. "0750" or "2750"', type: ['string', 'integer'] },
    },
  },

  identity: (p) => p.path,

  normalize(p) {
    const path = requireAbsolute(p.path, 'directory path');
    if (path === '/' && p.state === 'absent') throw new ConfigError('directory: refusing to remove /');
    return { ...p, path, mode: normalizeMode(p.mode) };
  },

  probe(items) {
    return statProbe(
      unique(items.map((i) => i.params.path)),
      items.map((i) => i.params),
    );
  },

  parse(output, items) {
    const { byPath, ids } = parseStat(output);
    return new Map(items.map((i) => [i.key, withNames(byPath.get(i.params.path), i.params, ids)]));
  },

  decide(p, f): Decision {
    const exists = !!f.type;
    if (p.state === 'absent') {
      if (!exists) return ok(`${p.path} is absent`);
      if (f.type !== 'directory') throw new ConfigError(`directory ${p.path}: state absent, but it is a ${f.type}`);
      return change(`remove ${p.path}`, [sh`rm -rf -- ${p.path}`]);
    }
    if (exists && f.type !== 'directory') {
      throw new ConfigError(`directory ${p.path}: a ${f.type} is in the way`);
    }
    const reasons: string[] = [];
    if (!exists) reasons.push('create');
    if (exists && p.owner !== undefined && !sameOwner(f.user, f.uid, p.owner)) reasons.push(`owner ${f.user || `uid ${f.uid}`} -> ${p.owner}`);
    if (exists && p.group !== undefined && !sameOwner(f.group, f.gid, p.group)) reasons.push(`group ${f.group || `gid ${f.gid}`} -> ${p.group}`);
    if (exists && p.mode !== undefined && !sameMode(f.mode, p.mode)) reasons.push(`mode ${f.mode} -> ${p.mode.replace(/^0/, '')}`);
    if (!reasons.length) return ok(`${p.path} is a directory${attrs(p)}`);

    const cmds: Shell[] = [];
    if (!exists) cmds.push(sh`mkdir -p -- ${p.path}`);
    if (p.owner !== undefined || p.group !== undefined) cmds.push(sh`chown ${ownerSpec(p)} -- ${p.path}`);
    // GNU chmod keeps a directory's setuid/setgid bits on a 4-digit numeric mode; the extra
    // leading zero clears them, so "0755" really converges a 2755 directory.
    if (p.mode !== undefined) cmds.push(sh`chmod ${'0' + p.mode} -- ${p.path}`);
    return change(`${p.path}: ${reasons.join(', ')}`, cmds);
  },
};

function attrs(p: DirectoryParams): string {
  const a = [p.owner !== undefined && `owner ${p.owner}`, p.group !== undefined && `group ${p.group}`, p.mode && `mode ${p.mode}`].filter(Boolean);
  return a.length ? ` (${a.join(', ')})` : '';
}
