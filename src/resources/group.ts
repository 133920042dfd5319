// group: a local group. One `getent group` reports every group of the run.
import { raw, sh } from '../shell/quote.js';
import { change, ok, type Decision, type Facts, type ResourceType } from './types.js';
import { unique } from '../lists.js';

export interface GroupParams {
  name: string;
  state?: 'present' | 'absent';
  gid?: number;
  system?: boolean;
}

/** shadow-utils' default NAME_REGEX, with a possible trailing `$` (Samba machine accounts). */
export const ACCOUNT_NAME = '^[a-z_][a-z0-9_.-]{0,31}\\$?$';

export const groupType: ResourceType<GroupParams> = {
  name: 'group',
  doc: {
    summary: 'A local group (members are managed by `user`).',
    example: '- group: {name: app}',
  },
  schema: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      name: { description: 'group name', type: 'string', pattern: ACCOUNT_NAME },
      state: { description: 'present (default) or absent', type: 'string', enum: ['present', 'absent'] },
      gid: { description: 'numeric gid', type: 'integer', minimum: 0 },
      system: { description: 'a system group (on creation)', type: 'boolean' },
    },
  },

  identity: (p) => p.name,

  probe(items) {
    return sh`getent group ${unique(items.map((i) => i.params.name))} 2>/dev/null\n`;
  },

  parse(output, items) {
    const groups = parseGroupLines(output);
    return new Map(items.map((i) => [i.key, groupFacts(groups.get(i.params.name))]));
  },

  decide(p, f): Decision {
    const exists = f.gid !== undefined;
    if (p.state === 'absent') {
      if (!exists) return ok(`group ${p.name} does not exist`);
      return change(`remove group ${p.name}`, [sh`if getent group ${p.name} >/dev/null; then groupdel -- ${p.name}; fi`]);
    }
    if (!exists) {
      const add = sh`groupadd ${p.gid !== undefined ? ['-g', String(p.gid)] : []} ${p.system ? ['-r'] : []} -- ${p.name}`;
      const mod = p.gid !== undefined ? sh`groupmod -g ${p.gid} -- ${p.name}` : raw(':');
      return change(`create group ${p.name}${p.gid !== undefined ? ` (gid ${p.gid})` : ''}`, [
        sh`if getent group ${p.name} >/dev/null; then ${mod}; else ${add}; fi`,
      ]);
    }
    if (p.gid !== undefined && String(p.gid) !== f.gid) {
      return change(`group ${p.name}: gid ${f.gid} -> ${p.gid}`, [sh`groupmod -g ${p.gid} -- ${p.name}`]);
    }
    return ok(`group ${p.name} exists (gid ${f.gid})`);
  },
};

export interface GroupEntry {
  name: string;
  gid: string;
  members: string[];
}

/** `getent group` lines: name:password:gid:member,member */
export function parseGroupLines(output: string): Map<string, GroupEntry> {
  const out = new Map<string, GroupEntry>();
  for (const line of output.split('\n')) {
    const [name, , gid, members] = line.split(':');
    if (!name || gid === undefined) continue;
    out.set(name, { name, gid, members: members ? members.split(',').filter(Boolean) : [] });
  }
  return out;
}

function groupFacts(g: GroupEntry | undefined): Facts {
  return g ? { gid: g.gid, members: g.members.join(',') } : {};
}
