// The database's steps: a verified dump before each deploy (and keel backup), the record that a
// migration followed it, and keel backup restore. As the app user, with the database password in
// PGPASSWORD inherited from the script (never on a command line).
//
// A dump is kept only once it was read whole (pg_restore to /dev/null decompresses every byte)
// and its checksum recorded beside it (<name>.dump.sha256). A restore checks that checksum and
// reads the dump whole again before it touches the database, then runs in one transaction:
// a dump that fails at any point leaves the database as it was.
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import type { Step } from '../engine/steps.js';
import type { HostDeploy } from './config.js';
import { pgEnv, type Database } from './database.js';

export interface DumpPlan {
  db: Database;
  dir: string;
  name: string;
  keep: number;
}

/** As the app user, from / (libpq's tools complain when they cannot read the cwd, root's home). */
function asUser(h: HostDeploy, code: Shell): Shell {
  // A group, not a subshell: `$((` would start arithmetic where it is substituted.
  return sh`{ cd / && runuser -u ${h.appUser} -- sh -c ${code.text}; }`;
}

/** For the lock script (no round trip of its own): the major version of this host's pg_dump
 *  (`<nonce> pg_dump 15`, empty without one) and, given the database, the server's
 *  (`<nonce> pg_server 170012`, server_version_num; empty when it cannot be asked). */
export function pgVersionsSnippet(nonce: string, db?: Database): Shell {
  const client = sh`printf '%s pg_dump %s\\n' ${nonce} "$(pg_dump --version 2>/dev/null | sed -n 's/^pg_dump (PostgreSQL) \\([0-9]*\\).*/\\1/p')"`;
  if (!db) return client;
  const ask = sh`cd / && PGCONNECT_TIMEOUT=5 psql -XAtqw -c 'show server_version_num' 2>/dev/null`;
  return joinShell([client, sh`( ${pgEnv(db)}; printf '%s pg_server %s\\n' ${nonce} "$(${ask})" )`]);
}

/** server_version_num's major version: 170012 -> 17, 90624 -> 9. */
export function serverMajor(versionNum: string): number | undefined {
  const n = Number(versionNum);
  if (!Number.isInteger(n) || n <= 0) return undefined;
  return Math.floor(n / 10000);
}

/** A verified dump: enough space, pg_dump -Fc to .partial, exit 0, not empty, read whole by
 *  pg_restore, its checksum recorded, then renamed; the oldest beyond `keep` removed, except the
 *  dump taken before the last migration that changed the database. No .partial is ever left. */
export function dumpSteps(h: HostDeploy, d: DumpPlan): Step[] {
  const partial = `${d.dir}/${d.name}.dump.partial`;
  const final = `${d.dir}/${d.name}.dump`;
  const dbSize = asUser(h, raw("psql -XAtqc 'select pg_database_size(current_database())'"));
  const tooOldSays =
    'pg_dump %s on this host cannot dump PostgreSQL %s (the client must not be older than the server): ' +
    'install postgresql-client-%s here, or dump on the database host (deploy_backup_host)\\n';
  const tooOld = sh`printf ${tooOldSays} "\${keel_cli:-(none)}" "$keel_srv" "$keel_srv" >&2; exit 1`;
  const noSpace = sh`printf 'not enough space in %s: %s bytes free, %s needed (the size of the database)\\n' ${d.dir} "$keel_avail" "$keel_db" >&2; exit 1`;
  const pgDump = asUser(h, sh`umask 077; pg_dump -Fc --no-password -f ${partial}`);
  const readWhole = asUser(h, sh`pg_restore -f /dev/null ${partial}`);
  return [
    {
      key: 'space',
      commands: [
        pgEnv(d.db),
        sh`install -d -o ${h.appUser} -g ${h.appGroup} -m 0700 -- ${d.dir}`,
        // A custom-format dump is compressed, but how much depends on the data: the size of the
        // database is the bound that cannot be too small.
        sh`keel_db=$(${dbSize}) || { echo 'cannot connect to the database to size it (see above)' >&2; exit 1; }`,
        // A client older than the server cannot dump it: say so, not pg_dump halfway through.
        sh`keel_srv=$(( $(${asUser(h, raw("psql -XAtqc 'show server_version_num'"))}) / 10000 ))`,
        sh`keel_cli=$(pg_dump --version 2>/dev/null | sed -n 's/^pg_dump (PostgreSQL) \\([0-9]*\\).*/\\1/p')`,
        sh`if [ "\${keel_cli:-0}" -lt "$keel_srv" ]; then ${tooOld}; fi`,
        sh`keel_avail=$(( $(df -Pk -- ${d.dir} | awk 'NR==2 {print $4}') * 1024 ))`,
        sh`printf 'database %s bytes; %s bytes available in %s\\n' "$keel_db" "$keel_avail" ${d.dir}`,
        sh`if [ "$keel_avail" -lt "$keel_db" ]; then ${noSpace}; fi`,
      ],
    },
    {
      key: 'pg_dump',
      commands: [
        pgEnv(d.db),
        sh`trap ${sh`rm -f -- ${partial}`.text} EXIT`,
        sh`rm -f -- ${partial}`,
        sh`${pgDump} || { keel_rc=$?; echo "pg_dump failed with exit code $keel_rc" >&2; exit "$keel_rc"; }`,
        sh`[ -s ${partial} ] || { echo 'pg_dump wrote an empty file' >&2; exit 1; }`,
        sh`${readWhole} || { echo 'pg_restore cannot read the dump whole: it is not kept' >&2; exit 1; }`,
        sh`sha256sum -- ${partial} | cut -d' ' -f1 > ${final + '.sha256'}`,
        sh`mv -f -- ${partial} ${final}`,
        raw('trap - EXIT'),
        sh`printf 'verified dump: %s (%s bytes, read whole, sha256 %s)\\n' ${final} "$(stat -c %s -- ${final})" "$(cat -- ${final + '.sha256'})"`,
      ],
    },
    { key: 'keep', commands: [keepDumps(d.dir, d.keep)] },
  ];
}

/** The newest `keep` dumps (by name: release ids and manual ones start with the time), and
 *  always the newest one a migration followed: the state to go back to after a bad one. */
function keepDumps(dir: string, keep: number): Shell {
  const remove = sh`rm -f -- "$keel_f" "$keel_f.sha256" "$keel_f.migrated"; echo "removed old dump $keel_f"`;
  return joinShell([
    sh`keel_protect=$(ls -1 -- ${dir} 2>/dev/null | grep '\\.dump\\.migrated$' | sort -r | head -n 1 | sed 's/\\.migrated$//')`,
    sh`ls -1 -- ${dir} 2>/dev/null | grep '\\.dump$' | sort -r | tail -n +${keep + 1} | while IFS= read -r keel_f; do`,
    sh`  if [ "$keel_f" = "$keel_protect" ]; then echo "kept $keel_f: the dump taken before the last migration"; continue; fi`,
    sh`  keel_f=${dir}/"$keel_f"; ${remove}`,
    raw('done'),
  ]);
}

/** A migration applied something after the dump `name` was taken: it is the one to go back to. */
export function dumpMigratedSteps(d: { dir: string; name: string }, release: string): Step[] {
  const file = `${d.dir}/${d.name}.dump.migrated`;
  return [{ key: 'dump-migrated', commands: [sh`printf 'release=%s\\nat=%s\\n' ${release} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > ${file}`] }];
}

/** keel backup restore: check the dump (its checksum, then read whole), then restore it in one
 *  transaction. Any failure leaves the database as it was, and says so. */
export function restoreSteps(h: HostDeploy, db: Database, file: string): Step[] {
  const unchanged = 'the database is unchanged';
  const readWhole = asUser(h, sh`pg_restore -f /dev/null ${file}`);
  const restore = asUser(
    h,
    sh`pg_restore --clean --if-exists --single-transaction --exit-on-error --no-owner --no-privileges --no-password -d "$PGDATABASE" ${file}`,
  );
  const sum = `${file}.sha256`;
  const said = sh`printf '%s changed since it was verified (sha256 %s, recorded %s): it is corrupt; %s\\n' ${file} "$keel_got" "$keel_want" ${unchanged}`;
  const mismatch = sh`${said} >&2; exit 1`;
  return [
    {
      key: 'check-dump',
      commands: [
        pgEnv(db),
        sh`[ -f ${file} ] || { echo ${`${file} does not exist on this host; ${unchanged}`} >&2; exit 1; }`,
        sh`if [ -f ${sum} ]; then keel_want=$(cat -- ${sum}); keel_got=$(sha256sum -- ${file} | cut -d' ' -f1)`,
        sh`  if [ "$keel_want" != "$keel_got" ]; then ${mismatch}; fi`,
        sh`  echo ${'checksum matches the one recorded when the dump was verified'}`,
        sh`else echo ${`no checksum recorded beside ${file} (not a dump keel verified): reading it whole instead`}; fi`,
        sh`${readWhole} || { echo ${`pg_restore cannot read ${file} whole: it is corrupt or not a dump; ${unchanged}`} >&2; exit 1; }`,
        sh`echo ${'read whole: every table and index of the dump is readable'}`,
      ],
    },
    {
      key: 'pg_restore',
      commands: [
        pgEnv(db),
        sh`${restore} || { keel_rc=$?; echo ${`pg_restore failed (in one transaction, rolled back): ${unchanged}`} >&2; exit "$keel_rc"; }`,
        sh`echo ${'restored ' + file + ' (in one transaction)'}`,
      ],
    },
  ];
}
