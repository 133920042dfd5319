// The database of the app, from its DATABASE_URL, as libpq's environment variables: pg_dump,
// psql and pg_restore get the password from PGPASSWORD in their environment (inherited, never
// on a command line, where `ps` would show it).
import { ConfigError } from '../errors.js';
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';

export interface Database {
  host: string;
  port: string;
  user: string;
  password: string;
  name: string;
  /** Other query parameters libpq knows (sslmode...). */
  options: Record<string, string>;
}

const LIBPQ_PARAMS: Record<string, string> = {
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  application_name: 'PGAPPNAME',
  host: 'PGHOST',
  port: 'PGPORT',
};

/** postgresql://, postgres:// and SQLAlchemy's postgresql+driver:// (seed 001). */
export function parseDatabaseUrl(url: string): Database {
  let u: URL;
  try {
    u = new URL(url.replace(/^postgres(ql)?\+[a-z0-9_]+:/i, 'postgresql:'));
  } catch {
    throw new ConfigError('database_url is not a URL (expected postgresql://user:password@host:port/name)');
  }
  if (!/^postgres(ql)?:$/i.test(u.protocol)) {
    throw new ConfigError(`database_url: keel deploy dumps PostgreSQL only, got a ${u.protocol.replace(':', '')} URL`, undefined, {
      hint: 'set deploy_backup: false to deploy without a dump',
    });
  }
  const options: Record<string, string> = {};
  for (const [k, v] of u.searchParams) if (LIBPQ_PARAMS[k]) options[k] = v;
  return {
    host: options.host ?? decodeURIComponent(u.hostname.replace(/^\[|\]$/g, '')) ?? '',
    port: options.port ?? u.port,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    name: decodeURIComponent(u.pathname.replace(/^\//, '')),
    options,
  };
}

/** `export PGHOST=...` lines (quoted) for a script: the connection, password included. */
export function pgEnv(db: Database): Shell {
  const vars: [string, string][] = [
    ['PGHOST', db.host],
    ['PGPORT', db.port],
    ['PGUSER', db.user],
    ['PGPASSWORD', db.password],
    ['PGDATABASE', db.name],
    ...Object.entries(db.options)
      .filter(([k]) => k !== 'host' && k !== 'port')
      .map(([k, v]): [string, string] => [LIBPQ_PARAMS[k]!, v]),
  ];
  return joinShell(vars.filter(([, v]) => v !== '').map(([k, v]) => sh`export ${raw(k)}=${v}`));
}
