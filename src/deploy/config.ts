// The deploy's settings, read from each host's compiled variables (role `deploy` declares and
// validates them, role `app` and `base` give the layout), and the choices that span hosts:
// which hosts deploy, which one migrates, which one dumps the database, which ones serve web.
import { ConfigError } from '../errors.js';
import type { HostPlan } from '../engine/plan.js';
import type { LocalBuildSettings } from './local-build.js';
import { notifyTargets, type NotifyTarget } from './notify.js';
import { isGitUrl } from './source.js';
import type { Host } from '../inventory/types.js';
import { parseDatabaseUrl } from './database.js';

/** One of the release's health checks (deploy_health_path, deploy_health_checks): a path asked
 *  from the new release's own server, or a command run in the release. */
export type HealthCheck = { path: string; status?: number; contains?: string } | { command: string };

export interface HostDeploy {
  plan: HostPlan;
  name: string;
  appUser: string;
  appGroup: string;
  appRoot: string;
  appName: string;
  /** `current`: the live release's symlink. */
  appDir: string;
  envFile: string;
  python: string;
  requirements: string;
  pipIndexUrl: string;
  wheelhouse: string;
  /** Has role nginx: the health check asks through it. */
  web: boolean;
  /** The app server's control script (role app, app_server not none): its slots; "" if none. */
  appctl: string;
  /** What the new release must pass before it gets traffic (web hosts). */
  healthChecks: HealthCheck[];
  healthPath: string;
  /** The path nginx answers during maintenance (nginx_health_path). */
  nginxHealthPath: string;
  healthHost: string;
  healthTimeout: number;
  buildCommands: string[];
  hooks: Record<string, string[]>;
  keepReleases: number;
  backupDir: string;
  backupKeep: number;
  maintenanceFile: string;
  /** While it exists (and its time has not passed), the timers' jobs wait: a switch is on. */
  holdFile: string;
  /** Commands run on the controller to take the host out of a load balancer, and back. */
  lbDrain: string;
  lbRestore: string;
}

/** A host with role lb in the run: nginx balancing the hosts of a group (lbctl drains them). */
export interface LbHost extends HostDeploy {
  lbName: string;
  lbctl: string;
  /** The inventory names of its backends. */
  members: string[];
}

export interface DeployConfig {
  hosts: HostDeploy[];
  /** The host that runs the migrations (and, by default, the dump). */
  migrateHost: HostDeploy;
  migrateCommand: string;
  migrationsPattern: RegExp;
  backupHost: HostDeploy | undefined;
  /** Why that host dumps: "deploy_backup_host", "the database host", "the migrate host". */
  backupHostWhy: string;
  databaseUrl: string;
  repo: string;
  subdir: string;
  deployKey: string;
  knownHosts: string;
  /** Run on the controller before shipping (deploy_local_build); none: commands is empty. */
  localBuild: LocalBuildSettings;
  notify: NotifyTarget[];
  /** deploy_serial: how many web hosts switch at a time (a count or "N%"); undefined: all. */
  serial: number | string | undefined;
  /** Load balancers (role lb) in front of hosts of this deploy. */
  lbHosts: LbHost[];
  lbHookTimeoutMs: number;
}

const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);

/** The deploy hosts of the run (those with role `deploy`) and the settings that span them.
 *  `inventory`: every host of the environment (--limit aside), to tell a load balancer that
 *  --limit left out. */
export function deployConfig(plans: HostPlan[], envFile: string, inventory: Host[] = plans.map((p) => p.host)): DeployConfig {
  const deployPlans = plans.filter((p) => p.host.roles.includes('deploy'));
  if (!deployPlans.length) {
    throw new ConfigError(
      `no host of this deploy has the role "deploy"`,
      { file: envFile },
      {
        hint: "give role deploy to every host that runs the app's code (web and workers), e.g. groups: {web: {roles: [base, app, nginx, deploy]}}",
      },
    );
  }
  const hosts = deployPlans.map(hostDeploy);
  const noNginx = hosts.filter((h) => h.appctl && !h.web);
  if (noNginx.length) {
    throw new ConfigError(
      `${noNginx.map((h) => h.name).join(', ')}: runs the app server (role app) but has no role nginx`,
      { file: envFile },
      {
        hint:
          'keel deploy starts a new release beside the live one and moves traffic to it through nginx: give these hosts role nginx, ' +
          'or app_server: none if they only run workers',
      },
    );
  }
  const first = deployPlans[0]!.vars;
  const pick = (name: string, label: string): HostDeploy => {
    const wanted = str(first[name]);
    if (!wanted) return hosts[0]!;
    const h = hosts.find((x) => x.name === wanted);
    if (!h)
      throw new ConfigError(
        `${name}: "${wanted}" is not one of the hosts of this deploy (${hosts.map((x) => x.name).join(', ')})`,
        { file: envFile },
        { hint: `the ${label} must have role deploy and be in --limit` },
      );
    return h;
  };
  const migrateHost = pick('deploy_migrate_host', 'migrate host');
  const backup = first.deploy_backup !== false && str(migrateHost.plan.vars.database_url) !== '';
  // The database host, when it deploys too, has the server's own pg_dump (a client older than
  // the server cannot dump it: web on Debian 12, database on 13).
  const dbHost = databaseHost(hosts, str(migrateHost.plan.vars.database_url));
  const [backupHost, backupHostWhy] = !backup
    ? [undefined, '']
    : str(first.deploy_backup_host)
      ? [pick('deploy_backup_host', 'backup host'), 'deploy_backup_host']
      : dbHost
        ? [dbHost, 'the database host']
        : [migrateHost, 'the migrate host'];
  let pattern: RegExp;
  try {
    pattern = new RegExp(str(first.deploy_migrations_pattern, '(^|/)(migrations|alembic/versions)/'));
  } catch (err) {
    throw new ConfigError(`deploy_migrations_pattern is not a regular expression: ${(err as Error).message}`, { file: envFile });
  }
  const lbHosts = balancers(plans, hosts, inventory, envFile);
  const serial = first.deploy_serial === null || first.deploy_serial === undefined ? undefined : (first.deploy_serial as number | string);
  return {
    hosts,
    migrateHost,
    migrateCommand: str(first.deploy_migrate_command),
    migrationsPattern: pattern,
    backupHost,
    backupHostWhy,
    databaseUrl: str((backupHost ?? migrateHost).plan.vars.database_url),
    repo: str(first.deploy_repo),
    subdir: str(first.deploy_subdir).replace(/\/+$/, ''),
    deployKey: str(first.deploy_key),
    knownHosts: str(first.deploy_known_hosts),
    localBuild: localBuildSettings(first, envFile),
    notify: notifyTargets(first.deploy_notify, envFile),
    serial,
    lbHosts,
    lbHookTimeoutMs: (typeof first.deploy_lb_timeout === 'number' ? first.deploy_lb_timeout : 300) * 1000,
  };
}

function localBuildSettings(v: Record<string, unknown>, envFile: string): LocalBuildSettings {
  const list = (x: unknown) => (Array.isArray(x) ? x.map(String) : []);
  const commands = list(v.deploy_local_build);
  const outputs = list(v.deploy_local_build_outputs).map((raw) => {
    const path = raw.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (!path || path.startsWith('/') || path.split('/').some((part) => part === '..' || part === '.' || part === '')) {
      throw new ConfigError(`deploy_local_build_outputs: "${raw}" is not a path inside the app's directory`, { file: envFile }, { hint: 'e.g. static/dist/' });
    }
    return path;
  });
  if (outputs.length && !commands.length) {
    throw new ConfigError('deploy_local_build_outputs lists paths, but deploy_local_build has no command to make them', { file: envFile });
  }
  if (commands.length && isGitUrl(str(v.deploy_repo))) {
    throw new ConfigError(
      'deploy_local_build needs the code on this machine, but deploy_repo is a git URL (each host clones it)',
      { file: envFile },
      { hint: 'set deploy_repo to a checkout on this machine ("" for the one holding the project: in CI, the job\'s checkout)' },
    );
  }
  return { commands, outputs };
}

/** The run's hosts with role lb whose backends include hosts of this deploy. One that --limit
 *  left out would keep sending requests to hosts it cannot be told to drain: refused. */
function balancers(plans: HostPlan[], hosts: HostDeploy[], inventory: Host[], envFile: string): LbHost[] {
  const deploying = new Set(hosts.map((h) => h.name));
  const inRun = new Set(plans.map((p) => p.host.name));
  const out: LbHost[] = [];
  for (const plan of plans.filter((p) => p.host.roles.includes('lb'))) {
    const v = plan.vars;
    const group = str(v.lb_backend_group, 'web');
    const members = ((v.group_members as Record<string, { name: string }[]> | undefined)?.[group] ?? []).map((m) => m.name);
    if (!members.some((m) => deploying.has(m))) continue;
    const lbName = str(v.lb_name, group);
    out.push({ ...hostDeploy(plan), lbName, lbctl: `/usr/local/sbin/lbctl-${lbName}`, members });
  }
  const left = inventory.filter(
    (h) =>
      h.roles.includes('lb') && !inRun.has(h.name) && inventory.some((m) => deploying.has(m.name) && m.groups.includes(str(h.vars.lb_backend_group, 'web'))),
  );
  if (left.length) {
    throw new ConfigError(
      `--limit leaves out ${left.map((h) => h.name).join(', ')} (role lb), which balances hosts of this deploy: it could not be told to drain them`,
      { file: envFile },
      { hint: `add ${left.map((h) => h.name).join(',')} to --limit` },
    );
  }
  return out;
}

/** The deploy host the database URL names (by inventory name or address), if any. */
function databaseHost(hosts: HostDeploy[], url: string): HostDeploy | undefined {
  if (!url) return undefined;
  let host: string;
  try {
    host = parseDatabaseUrl(url).host;
  } catch {
    return undefined; // reported where the dump needs it
  }
  if (!host || host === 'localhost' || host.startsWith('/')) return undefined;
  return hosts.find((h) => h.name === host || h.plan.host.connection.address === host);
}

function hostDeploy(plan: HostPlan): HostDeploy {
  const v = plan.vars;
  const appRoot = str(v.app_root);
  const appServer = plan.host.roles.includes('app') && str(v.app_server, 'gunicorn') !== 'none';
  const healthPath = str(v.deploy_health_path, '/ping');
  const extraChecks = Array.isArray(v.deploy_health_checks) ? (v.deploy_health_checks as HealthCheck[]) : [];
  return {
    plan,
    name: plan.host.name,
    appUser: str(v.app_user, 'app'),
    appGroup: str(v.app_group, str(v.app_user, 'app')),
    appRoot,
    appName: str(v.app_name, 'app'),
    appDir: str(v.app_dir, `${appRoot}/current`),
    envFile: str(v.app_env_file, `${appRoot}/config/app.env`),
    python: str(v.app_python, '/usr/bin/python3'),
    requirements: str(v.app_requirements, 'requirements.txt'),
    pipIndexUrl: str(v.app_pip_index_url),
    wheelhouse: str(v.app_wheelhouse),
    web: plan.host.roles.includes('nginx'),
    appctl: appServer ? `/usr/local/sbin/appctl-${str(v.app_service_name, str(v.app_name, 'app'))}` : '',
    healthChecks: [...(healthPath ? [{ path: healthPath }] : []), ...extraChecks],
    healthPath,
    nginxHealthPath: str(v.nginx_health_path),
    healthHost: str(v.deploy_health_host) || firstServerName(str(v.nginx_server_name)),
    healthTimeout: typeof v.deploy_health_timeout === 'number' ? v.deploy_health_timeout : 30,
    buildCommands: Array.isArray(v.deploy_build_commands) ? v.deploy_build_commands.map(String) : [],
    hooks: (v.deploy_hooks ?? {}) as Record<string, string[]>,
    keepReleases: typeof v.deploy_keep_releases === 'number' ? v.deploy_keep_releases : 5,
    backupDir: str(v.deploy_backup_dir, `${appRoot}/backups`),
    backupKeep: typeof v.deploy_backup_keep === 'number' ? v.deploy_backup_keep : 10,
    maintenanceFile: str(v.nginx_maintenance_file, `${appRoot}/maintenance_on.html`),
    holdFile: `/etc/keel/apps/${str(v.app_name, 'app')}/hold`,
    lbDrain: str(v.deploy_lb_drain),
    lbRestore: str(v.deploy_lb_restore),
  };
}

/** The name nginx answers to (role nginx's server_name), for the health request's Host. */
function firstServerName(names: string): string {
  const first = names.split(/\s+/).find((n) => n && n !== '_' && !n.startsWith('*') && !n.startsWith('~'));
  return first ?? 'localhost';
}
