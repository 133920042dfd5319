// Where each role writes the app's logs on a host (docs/layout.md): files under
// app_root/logs/<dir>/ (gunicorn or uvicorn, nginx, rq, one directory per daemon and timer),
// and the journal of the systemd units that run the app's processes (what systemd itself says
// about them: started, exited, restarted; and the output of a unit that writes there).
import type { AppFacts } from './hosts.js';

export interface LogSelection {
  /** Directories under app_root/logs/ whose *.log files are read ('*': all of them). */
  dirs: string[];
  /** systemd units (globs allowed) whose journal is read. */
  units: string[];
}

export const LOG_KINDS = ['app', 'worker', 'nginx'] as const;

/** What `keel logs <env> [what]` reads on one host; undefined when the host has none of it. */
export function logSelection(f: AppFacts, what: string | undefined): LogSelection | undefined {
  const app = f.appServer && f.appServer !== 'none';
  // The app server's two slots (role app): <name>@a and <name>@b.
  const appUnits = app && f.processManager === 'systemd' ? [`${f.appServiceName}@*.service`] : [];
  const rqUnits = f.rq.filter((g) => g.manager === 'systemd').map((g) => `${g.unit}@*.service`);
  const unitsOf = (g: AppFacts['daemons'][number], timer: boolean) =>
    g.manager === 'systemd' ? [`${g.unit}.service`, ...(timer ? [`${g.unit}.timer`] : [])] : [];
  const daemonUnits = f.daemons.flatMap((g) => unitsOf(g, false));
  const timerUnits = f.timers.flatMap((g) => unitsOf(g, true));
  switch (what) {
    case undefined:
      if (!app && !f.web && !f.rq.length && !f.daemons.length && !f.timers.length) return undefined;
      return { dirs: ['*'], units: [...appUnits, ...rqUnits, ...daemonUnits, ...timerUnits] };
    case 'app':
      return app ? { dirs: [f.appServer], units: appUnits } : undefined;
    case 'worker':
      return f.rq.length ? { dirs: ['rq'], units: rqUnits } : undefined;
    case 'nginx':
      return f.web ? { dirs: ['nginx'], units: [] } : undefined;
  }
  const daemon = f.daemons.find((g) => g.name === what);
  if (daemon) return { dirs: [what], units: unitsOf(daemon, false) };
  const timer = f.timers.find((g) => g.name === what);
  if (timer) return { dirs: [what], units: unitsOf(timer, true) };
  return undefined;
}

/** Every name `keel logs` takes on these hosts: app, worker, nginx, and each daemon and timer. */
export function logNames(facts: AppFacts[]): string[] {
  const names = new Set<string>();
  for (const f of facts) {
    if (f.appServer && f.appServer !== 'none') names.add('app');
    if (f.rq.length) names.add('worker');
    if (f.web) names.add('nginx');
    for (const g of [...f.daemons, ...f.timers]) names.add(g.name);
  }
  return [...names];
}
