// user: a local account. Probe: ONE `getent passwd` for every user of the run and ONE
// `getent group` for just the groups the run mentions; membership is computed in parse()
// (no `id -Gn` per user). Supplementary groups are appended, never removed.
import { raw, sh } from '../shell/quote.js';
import { ConfigError } from '../errors.js';
import { change, ok, type Decision, type Facts, type ResourceType } from './types.js';
import { requireAbsolute } from './paths.js';
import { unique } from '../lists.js';
import { ACCOUNT_NAME, parseGroupLines } from './group.js';

export interface UserParams {
  name: string;
  state?: 'present' | 'absent';
  uid?: number;
  /** Primary group, by name or gid (must exist). Default: useradd's (a group named like the user). */
  group?: string | number;
  /** Supplementary groups, appended to the user's current ones. */
  groups?: string[];
  home?: string;
  shell?: string;
  /** A system account (useradd -r); only used when creating it. */
  system?: boolean;
  /** Create the home directory when creating the user (default: true, false for system users). */
  create_home?: boolean;
}

export const userType: ResourceType<UserParams> = {
  name: 'user',
  doc: {
    summary: 'A local user account.',
    example: '- user: {name: app, group: app, home: /home/app, shell: /bin/bash, create_home: true}',
  },
  schema: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      name: { description: 'user name', type: 'string', pattern: ACCOUNT_NAME },
      state: { description: 'present (default) or absent', type: 'string', enum: ['present', 'absent'] },
      uid: { description: 'numeric uid', type: 'integer', minimum: 0 },
      group: {
        description: 'primary group (name or gid)',
        oneOf: [
          { type: 'string', pattern: ACCOUNT_NAME },
          { type: 'integer', minimum: 0 },
        ],
      },
      groups: { description: 'supplementary groups (exactly these)', type: 'array', items: { type: 'string', pattern: ACCOUNT_NAME } },
      home: { description: 'home directory', type: 'string', minLength: 1 },
      shell: { description: 'login shell', type: 'string', minLength: 1 },
      system: { description: 'a system account (on creation)', type: 'boolean' },
      create_home: { description: 'create the home directory (on creation)', type: 'boolean' },
    },
  },

  identity: (p) => p.name,

  normalize(p) {
    const home = p.home === undefined ? undefined : requireAbsolute(p.home, `user ${p.name}: home`);
    if (p.shell !== undefined && (!p.shell.startsWith('/') || /[\n:]/.test(p.shell)))
      throw new ConfigError(`user ${p.name}: shell must be an absolute path, got "${p.shell}"`);
    if (home?.includes(':')) throw new ConfigError(`user ${p.name}: home cannot contain ":"`);
    return { ...p, home, groups: p.groups ? unique(p.groups) : undefined };
  },

  probe(items) {
    const users = unique(items.map((i) => i.params.name));
    let s = sh`getent passwd ${users} 2>/dev/null\n`;
    const groups = unique(items.flatMap((i) => wantedGroups(i.params)));
    if (groups.length) s = sh`${s}echo --group; getent group ${groups} 2>/dev/null\n`;
    return s;
  },

  parse(output, items) {
    const [passwdPart, groupPart = ''] = output.split(/^--group$/m);
    const users = new Map<string, Facts>();
    for (const line of (passwdPart ?? '').split('\n')) {
      const [name, , uid, gid, , home, shell] = line.split(':');
      if (name && shell !== undefined) users.set(name, { uid: uid!, gid: gid!, home: home!, shell });
    }
    const groups = parseGroupLines(groupPart);
    return new Map(
      items.map((i) => {
        const u = users.get(i.params.name);
        const f: Facts = u ? { ...u } : {};
        for (const g of wantedGroups(i.params)) {
          const e = groups.get(g);
          if (!e) continue;
          f[`g:${g}`] = e.gid;
          if (u && (e.members.includes(i.params.name) || e.gid === u.gid)) f[`m:${g}`] = '1';
        }
        return [i.key, f];
      }),
    );
  },

  decide(p, f): Decision {
    const exists = f.uid !== undefined;
    const ifExists = sh`id -u -- ${p.name} >/dev/null 2>&1`;
    if (p.state === 'absent') {
      if (!exists) return ok(`user ${p.name} does not exist`);
      return change(`remove user ${p.name}`, [sh`if ${ifExists}; then userdel -- ${p.name}; fi`]);
    }
    const reasons: string[] = [];
    const mod: string[] = [];
    if (p.uid !== undefined && (!exists || String(p.uid) !== f.uid)) {
      reasons.push(`uid ${f.uid} -> ${p.uid}`);
      mod.push('-u', String(p.uid));
    }
    if (p.group !== undefined && (!exists || !samePrimary(p.group, f))) {
      reasons.push(`group ${f.gid} -> ${p.group}`);
      mod.push('-g', String(p.group));
    }
    const missing = (p.groups ?? []).filter((g) => !exists || f[`m:${g}`] !== '1');
    if (missing.length) {
      reasons.push(`add to ${missing.join(', ')}`);
      mod.push('-a', '-G', missing.join(','));
    }
    if (p.home !== undefined && (!exists || f.home !== p.home)) {
      reasons.push(`home ${f.home} -> ${p.home}`);
      mod.push('-d', p.home);
    }
    if (p.shell !== undefined && (!exists || f.shell !== p.shell)) {
      reasons.push(`shell ${f.shell} -> ${p.shell}`);
      mod.push('-s', p.shell);
    }
    if (exists && !reasons.length) return ok(`user ${p.name} exists (uid ${f.uid})`);

    const add: string[] = [];
    if (p.uid !== undefined) add.push('-u', String(p.uid));
    if (p.group !== undefined) add.push('-g', String(p.group));
    if (p.groups?.length) add.push('-G', p.groups.join(','));
    if (p.home !== undefined) add.push('-d', p.home);
    if (p.shell !== undefined) add.push('-s', p.shell);
    if (p.system) add.push('-r');
    add.push((p.create_home ?? !p.system) ? '-m' : '-M');
    // Chosen in shell: an earlier resource of the run may have created or removed the user.
    const modCmd = mod.length ? sh`usermod ${mod} -- ${p.name}` : raw(':');
    return change(exists ? `user ${p.name}: ${reasons.join(', ')}` : `create user ${p.name}`, [
      sh`if ${ifExists}; then ${modCmd}; else useradd ${add} -- ${p.name}; fi`,
    ]);
  },
};

function wantedGroups(p: UserParams): string[] {
  return [...(typeof p.group === 'string' ? [p.group] : []), ...(p.groups ?? [])];
}

function samePrimary(want: string | number, f: Facts): boolean {
  if (typeof want === 'number') return String(want) === f.gid;
  return f[`g:${want}`] !== undefined && f[`g:${want}`] === f.gid;
}
