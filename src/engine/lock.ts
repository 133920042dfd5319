// The run lock: one per host, in keel's state directory on the host, taken by every run that
// can change the host (provision, deploy, rollback, maintenance, backup restore; not --check).
//
// Taking it is `mkdir $KEEL_STATE/lock` (atomic), then an `owner` file: who, from where, when,
// the controller's pid, the command, and the pid and start time of the run's remote shell
// (src/ssh/remote-shell.ts), which lives as long as the run's connection. So a lock whose shell
// is gone belongs to a run that is gone: it is reported as stale and `keel lock release <env>`
// clears it; a live one is never taken over. The lock is taken in the same script as the
// run's first probe (no extra round trip) and released by the run's last script.
import { hostname, userInfo } from 'node:os';
import { randomBytes } from 'node:crypto';
import { sh } from '../shell/quote.js';
import { PRELUDE, wrap } from './script-parts.js';

export interface LockOwner {
  run_id: string;
  command: string;
  user: string;
  controller: string;
  pid: string;
  started: string;
  /** Deploys add the branch and release they are making. */
  [extra: string]: string;
}

export interface LockHolder {
  state: 'live' | 'stale';
  owner: Partial<LockOwner> & { holder_pid?: string };
}

/** This process's owner record for a run of `command` (`deploy staging --branch x`). */
export function newLockOwner(command: string, extra: Record<string, string> = {}): LockOwner {
  return {
    run_id: randomBytes(8).toString('hex'),
    command: command.replace(/[\r\n]+/g, ' '),
    user: userInfo().username,
    controller: hostname(),
    pid: String(process.pid),
    started: new Date().toISOString(),
    ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, v.replace(/[\r\n]+/g, ' ')])),
  };
}

// Helpers every lock snippet needs. keel_start_of PID prints the process's start time (field
// 22 of /proc/PID/stat; the command name may hold spaces and parentheses, so cut after the
// last ") "), which tells a live holder from a new process that reused its pid.
// keel_lock_state reads the holder's pid and start time from the owner file, one line at a time:
const READ_OWNER_LINE = `case $keel_k in holder_pid) keel_hp=$keel_v ;; holder_start) keel_hs=$keel_v ;; esac`;
const HELPERS = `keel_lock="$KEEL_STATE/lock"
keel_start_of() { [ -r "/proc/$1/stat" ] || return 1; IFS= read -r keel_st < "/proc/$1/stat" || return 1; set -- \${keel_st##*) }; printf '%s' "\${20}"; }
keel_lock_state() {
  keel_hp=; keel_hs=
  while IFS='=' read -r keel_k keel_v; do ${READ_OWNER_LINE}; done < "$keel_lock/owner" 2>/dev/null
  if [ -n "$keel_hp" ] && [ -n "$keel_hs" ] && [ "$(keel_start_of "$keel_hp")" = "$keel_hs" ]; then echo live; else echo stale; fi
}
keel_lock_report() { printf '%s L held %s\\n' "$1" "$(keel_lock_state)"; cat -- "$keel_lock/owner" 2>/dev/null; printf '\\n%s L end\\n' "$1"; }
`;

/** Take the lock or report its holder. On `held`, the rest of the script does not run. */
export function acquireSnippet(nonce: string, owner: LockOwner): string {
  const lines = Object.entries(owner).map(([k, v]) => `${k}=${v}`);
  const writeOwner = `printf '%s\\n' ${sh`${lines}`}; printf 'holder_pid=%s\\nholder_start=%s\\n' "$$" "$(keel_start_of $$)"`;
  return `${HELPERS}mkdir -p -- "$KEEL_STATE" 2>/dev/null && chmod 700 -- "$KEEL_STATE" 2>/dev/null
if mkdir -- "$keel_lock" 2>/dev/null; then
  { ${writeOwner}; } > "$keel_lock/owner.tmp" && mv -f -- "$keel_lock/owner.tmp" "$keel_lock/owner"
  printf '%s L acquired\\n' ${sh`${nonce}`}
elif grep -qxF ${sh`${'run_id=' + owner.run_id}`} "$keel_lock/owner" 2>/dev/null; then
  # The same machine under two inventory names: this run holds it already.
  printf '%s L acquired\\n' ${sh`${nonce}`}
else
  keel_lock_report ${sh`${nonce}`}
  exit 0
fi
`;
}

/** Report the holder, if any, without taking the lock (--check, `keel lock status`). */
export function peekSnippet(nonce: string): string {
  return `${HELPERS}if [ -d "$keel_lock" ]; then keel_lock_report ${sh`${nonce}`}; else printf '%s L free\\n' ${sh`${nonce}`}; fi\n`;
}

/** The whole script that releases the lock if this run holds it (the run's last script). */
export function releaseScript(runId: string): string {
  return wrap(`${PRELUDE}keel_lock="$KEEL_STATE/lock"
if grep -qxF ${sh`${'run_id=' + runId}`} "$keel_lock/owner" 2>/dev/null; then rm -rf -- "$keel_lock"; fi
`);
}

/** Stop a script (exit 96) unless this run still holds the lock: someone ran `keel lock
 *  release --force` under it. */
export function assertHeldSnippet(runId: string): string {
  return (
    `grep -qxF ${sh`${'run_id=' + runId}`} "$KEEL_STATE/lock/owner" 2>/dev/null || ` +
    "{ echo 'keel: this run no longer holds the lock of this host (it was released by someone else); nothing more was changed' >&2; exit 96; }\n"
  );
}

/** `keel lock release`: remove a stale lock (or any, with force). Reports like peek. */
export function breakSnippet(nonce: string, force: boolean): string {
  return `${HELPERS}if [ ! -d "$keel_lock" ]; then printf '%s L free\\n' ${sh`${nonce}`}
else
  keel_lock_report ${sh`${nonce}`}
  if [ "$(keel_lock_state)" = stale ] || ${force ? 'true' : 'false'}; then rm -rf -- "$keel_lock" && printf '%s L removed\\n' ${sh`${nonce}`}; fi
fi
`;
}

export type LockReport = { kind: 'acquired' } | { kind: 'free' } | { kind: 'held'; holder: LockHolder; removed: boolean };

/** Read what a lock snippet printed (its lines start with the nonce). */
export function parseLockReport(stdout: string, nonce: string): LockReport | undefined {
  const lines = stdout.split('\n');
  const at = (tag: string) => lines.findIndex((l) => l === `${nonce} L ${tag}` || l.startsWith(`${nonce} L ${tag} `));
  if (at('acquired') >= 0) return { kind: 'acquired' };
  const held = at('held');
  if (held < 0) return at('free') >= 0 ? { kind: 'free' } : undefined;
  const state = lines[held]!.slice(`${nonce} L held `.length) === 'live' ? 'live' : 'stale';
  const end = lines.findIndex((l, i) => i > held && l === `${nonce} L end`);
  const owner: Record<string, string> = {};
  for (const l of lines.slice(held + 1, end < 0 ? undefined : end)) {
    const eq = l.indexOf('=');
    if (eq > 0) owner[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return { kind: 'held', holder: { state, owner }, removed: at('removed') >= 0 };
}

/** "alice@laptop (pid 4242), `keel deploy staging --branch x`, since 2026-12-01T10:02:11Z"
 *  (", started by bob (GitHub Actions) in <the job's URL>" for a CI job). */
export function describeHolder(h: LockHolder): string {
  const o = h.owner;
  if (!o.run_id) return 'a run whose details were not written (it was interrupted while taking the lock)';
  const extra = ['branch', 'release'].filter((k) => o[k]).map((k) => `${k} ${o[k]}`);
  // A CI job: who started it, and where it runs.
  const job = o.by ? `, started by ${o.by}${o.ci ? ` in ${o.ci}` : ''}` : '';
  return (
    `${o.user ?? '?'}@${o.controller ?? '?'} (pid ${o.pid ?? '?'}), \`keel ${o.command ?? '?'}\`` +
    `${extra.length ? ` (${extra.join(', ')})` : ''}, since ${o.started ?? '?'}${job}`
  );
}

/** The whole script for `keel lock status` (peek) or `keel lock release` (break). */
export function lockCommandScript(nonce: string, mode: 'status' | 'release' | 'force'): string {
  return wrap(PRELUDE + (mode === 'status' ? peekSnippet(nonce) : breakSnippet(nonce, mode === 'force')));
}
