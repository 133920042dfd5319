// service: a systemd unit. ONE `systemctl show` reports every unit of the run: it prints one
// block of KEY=value lines per unit, in the order of its arguments, blocks separated by a blank
// line, and it prints a block (LoadState=not-found) even for units that are not installed yet.
// restarted/reloaded are actions, not states: they always change and cannot be verified.
import { raw, sh, type Shell } from '../shell/quote.js';
import { change, ok, type Decision, type Facts, type ResourceType } from './types.js';
import { unique } from '../lists.js';

export interface ServiceParams {
  name: string;
  state?: 'started' | 'stopped' | 'restarted' | 'reloaded';
  enabled?: boolean;
  /** Run `systemctl daemon-reload` before acting (it also runs when systemd asks for it). */
  daemon_reload?: boolean;
}

const PROPERTIES = 'Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload';
/** Unit file states where enable/disable do not apply (no [Install] section, generated...). */
const NOT_ENABLEABLE = new Set(['static', 'generated', 'transient', 'indirect', 'alias']);
const ENABLED = new Set(['enabled', 'enabled-runtime']);
const RUNNING = new Set(['active', 'reloading']);

export const serviceType: ResourceType<ServiceParams> = {
  name: 'service',
  doc: {
    summary: 'A systemd unit: running or stopped, enabled or not. One `systemctl show` answers for every unit of the run.',
    example: '- service: {name: nginx, state: started, enabled: true}',
  },
  schema: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      // systemd unit names: letters, digits, ":-_.\@", optionally a template instance.
      name: { description: 'unit name (`nginx`, `app@1`)', type: 'string', pattern: '^[A-Za-z0-9:_.\\\\@-]+$', maxLength: 255 },
      state: {
        description: 'started, stopped, restarted or reloaded (the last two always act: prefer a handler)',
        type: 'string',
        enum: ['started', 'stopped', 'restarted', 'reloaded'],
      },
      enabled: { description: 'started at boot', type: 'boolean' },
      daemon_reload: { description: 'run `systemctl daemon-reload` first when the unit file changed', type: 'boolean' },
    },
  },

  identity: (p) => p.name,

  probe(items) {
    const units = unique(items.map((i) => i.params.name));
    // Without a running systemd (a container, chroot) this prints nothing: decide() then plans
    // the start/enable and the apply reports systemctl's own error.
    return sh`systemctl show --property=${PROPERTIES} -- ${units} 2>/dev/null\n`;
  },

  parse(output, items) {
    const units = unique(items.map((i) => i.params.name));
    const blocks = output
      .replace(/\n+$/, '')
      .split(/\n\s*\n/)
      .filter((b) => b.trim() !== '');
    const byUnit = new Map<string, Facts>();
    // Blocks come in argument order; with a count mismatch (a failed call) trust nothing.
    if (blocks.length === units.length) {
      units.forEach((u, n) => {
        const f: Facts = {};
        for (const line of blocks[n]!.split('\n')) {
          const eq = line.indexOf('=');
          if (eq > 0) f[line.slice(0, eq)] = line.slice(eq + 1);
        }
        byUnit.set(u, f);
      });
    }
    return new Map(items.map((i) => [i.key, byUnit.get(i.params.name) ?? {}]));
  },

  decide(p, f): Decision {
    const unit = p.name;
    const known = f.LoadState !== undefined;
    const loaded = f.LoadState === 'loaded';
    const reasons: string[] = [];
    const cmds: Shell[] = [];
    const okParts: string[] = [];

    if (!known) reasons.push('systemd state unknown');
    else if (!loaded) reasons.push(`unit ${f.LoadState}`);
    if (f.NeedDaemonReload === 'yes') reasons.push('unit files changed on disk');

    if (p.enabled !== undefined) {
      const ufs = f.UnitFileState ?? '';
      if (p.enabled && loaded && (ENABLED.has(ufs) || NOT_ENABLEABLE.has(ufs))) okParts.push(ufs);
      else if (!p.enabled && (!loaded || !ENABLED.has(ufs))) okParts.push(loaded ? ufs || 'not enabled' : 'not installed');
      else {
        reasons.push(p.enabled ? `enable (${ufs || 'not installed'})` : `disable (${ufs})`);
        cmds.push(sh`systemctl ${p.enabled ? 'enable' : 'disable'} -- ${unit}`);
      }
    }
    const active = f.ActiveState ?? '';
    let unverifiable = false;
    switch (p.state) {
      case 'started':
        if (loaded && RUNNING.has(active)) okParts.push(`${active} (${f.SubState})`);
        else {
          reasons.push(`start (${active || 'not loaded'})`);
          cmds.push(sh`systemctl start -- ${unit}`);
        }
        break;
      case 'stopped':
        if (!loaded || (!RUNNING.has(active) && active !== 'activating')) okParts.push(loaded ? active : 'not installed');
        else {
          reasons.push(`stop (${active})`);
          cmds.push(sh`systemctl stop -- ${unit}`);
        }
        break;
      case 'restarted':
        unverifiable = true;
        reasons.push('restart');
        cmds.push(sh`systemctl restart -- ${unit}`);
        break;
      case 'reloaded':
        unverifiable = true;
        reasons.push('reload');
        // reload fails on a stopped unit: start it instead (Ansible does the same).
        cmds.push(sh`if systemctl is-active --quiet -- ${unit}; then systemctl reload -- ${unit}; else systemctl start -- ${unit}; fi`);
        break;
      default:
        break;
    }
    // Nothing to do for this unit: not installed and only asked to be stopped/disabled.
    if (!cmds.length && (f.NeedDaemonReload !== 'yes' || !known)) {
      return ok(`${unit} ${okParts.join(', ') || (known ? f.LoadState : 'nothing to manage')}`);
    }
    // A unit that is not loaded yet was probably just installed or written by an earlier
    // resource of this run: systemd must re-read its unit files first.
    if (p.daemon_reload || f.NeedDaemonReload === 'yes' || (known && !loaded)) cmds.unshift(raw('systemctl daemon-reload'));
    return change(`${unit}: ${reasons.join(', ')}`, cmds, unverifiable ? { unverifiable } : undefined);
  },
};
