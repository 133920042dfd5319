// Which hosts an operation works on, what the roles put where on each (read from its compiled
// variables, as keel deploy reads them), and how to connect to them.
import pLimit from 'p-limit';
import { ConfigError } from '../errors.js';
import { CONNECTS_AT_ONCE, connectOptions, type ConnectorOptions } from '../engine/connector.js';
import type { PreparedRun } from '../engine/pipeline.js';
import type { HostPlan } from '../engine/plan.js';
import { selectHosts } from '../inventory/load.js';
import type { Inventory } from '../inventory/types.js';
import { openLink, type HostLink } from '../ssh/link.js';
import type { DeployConfig, HostDeploy } from '../deploy/config.js';

/** The app as the roles laid it out on one host (docs/layout.md). */
export interface AppFacts {
  name: string;
  appName: string;
  appUser: string;
  appGroup: string;
  appRoot: string;
  envFile: string;
  python: string;
  /** gunicorn, uvicorn, or none (role app); "" without role app. */
  appServer: string;
  appServiceName: string;
  processManager: string;
  /** Role nginx: its maintenance switch file. */
  web: boolean;
  maintenanceFile: string;
  /** Role deploy: releases live here. */
  deploys: boolean;
  /** Instances of roles daemon, timer and rq: their names (logs/<name>/, rq: logs/rq/<name>-*),
   *  units (supervisor programs or systemd units) and process managers. */
  daemons: ProcessGroup[];
  timers: ProcessGroup[];
  rq: ProcessGroup[];
}

export interface ProcessGroup {
  name: string;
  unit: string;
  manager: string;
}

const str = (v: unknown, d = ''): string => (typeof v === 'string' && v !== '' ? v : d);

export function appFacts(plan: HostPlan): AppFacts {
  const v = plan.vars;
  const roles = plan.host.roles;
  const appName = str(v.app_name, 'app');
  const appRoot = str(v.app_root, `/home/${str(v.app_user, 'app')}/webapp`);
  const instances = plan.host.roleInstances ?? roles.map((role) => ({ role, name: undefined, vars: {} as Record<string, unknown> }));
  // What the inventory sets (the instance's own variables, else the host's), else the role's
  // default. The compiled host variables would not do: they resolve instance defaults
  // (daemon_name: "{{role_instance}}") without an instance.
  const set = (x: unknown) => (typeof x === 'string' && !x.includes('{{') ? x : '');
  const named = (role: string, prefix: string, unitOf: (name: string) => string, manager: string, defaultName = '') =>
    instances
      .filter((i) => i.role === role)
      .map((i) => {
        const own = (k: string) => set(i.vars[`${prefix}_${k}`]) || set(plan.host.vars[`${prefix}_${k}`]);
        const name = set(i.vars[`${prefix}_name`]) || i.name || set(plan.host.vars[`${prefix}_name`]) || defaultName;
        return { name, unit: own('unit') || unitOf(name), manager: own('process_manager') || manager, absent: own('state') === 'absent' };
      })
      .filter((x) => x.name && !x.absent)
      .map(({ name, unit, manager }) => ({ name, unit, manager }));
  return {
    name: plan.host.name,
    appName,
    appUser: str(v.app_user, 'app'),
    appGroup: str(v.app_group, str(v.app_user, 'app')),
    appRoot,
    envFile: str(v.app_env_file, `${appRoot}/config/app.env`),
    python: str(v.app_python, '/usr/bin/python3'),
    appServer: roles.includes('app') ? str(v.app_server, 'gunicorn') : '',
    appServiceName: str(v.app_service_name, appName),
    processManager: str(v.app_process_manager, 'supervisor'),
    web: roles.includes('nginx'),
    maintenanceFile: str(v.nginx_maintenance_file, `${appRoot}/maintenance_on.html`),
    deploys: roles.includes('deploy'),
    daemons: named('daemon', 'daemon', (n) => `${appName}-${n}`, 'systemd'),
    timers: named('timer', 'timer', (n) => `${appName}-${n}`, 'systemd'),
    rq: named('rq', 'rq', (n) => `${appName}-rq-${n}`, 'supervisor', 'default'),
  };
}

/**
 * The hosts `keel exec` runs on: the migrate host by default, every deploy host with `all`,
 * or the deploy hosts among `limit` (hosts or groups).
 */
export function execHosts(config: DeployConfig, inventory: Inventory, o: { limit?: string[]; all?: boolean }): HostDeploy[] {
  if (o.all && o.limit?.length) throw new ConfigError('--all and --limit choose hosts both: give one of them');
  if (o.all) return config.hosts;
  if (!o.limit?.length) return [config.migrateHost];
  const names = new Set(selectHosts(inventory, o.limit).map((h) => h.name));
  const hosts = config.hosts.filter((h) => names.has(h.name));
  if (!hosts.length) {
    throw new ConfigError(`--limit ${o.limit.join(',')} selects no host that runs the app (role deploy: ${config.hosts.map((h) => h.name).join(', ')})`);
  }
  return hosts;
}

/** The plans of the hosts `limit` selects (all without one). */
export function limitPlans(prepared: PreparedRun, limit?: string[]): HostPlan[] {
  if (!limit?.length) return prepared.plans;
  const names = new Set(selectHosts(prepared.inventory, limit).map((h) => h.name));
  return prepared.plans.filter((p) => names.has(p.host.name));
}

/** Connections for operations: a HostLink per host (scripts, and processes of their own). */
export function linkConnector(prepared: PreparedRun, o: ConnectorOptions): (plan: HostPlan) => Promise<HostLink> {
  const options = connectOptions(prepared, o);
  const gate = pLimit(CONNECTS_AT_ONCE);
  return (plan) => gate(() => openLink(options(plan)));
}
