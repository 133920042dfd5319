// What keel status asks a host, as one snippet (it runs before the provision probe, in the same
// script: one round trip per host). Each line starts with the nonce and a tag:
//   R <key> <value>        the live release: live, sha, branch, by, since (the switch, epoch)
//   C <name> <exit>        each check hook of the app (/etc/keel/apps/<app>/check.d/*)
//   S <line>               supervisorctl status
//   P <unit> <key>=<value> systemctl show of each of the app's units (timestamps as @epoch)
//   F <unit>, f <line>     a failed unit (or one systemd is restarting) and its last log lines
//   X <line>               same for a failed supervisor program: `supervisorctl tail`
//   N <state> <@epoch>     nginx
//   M on <epoch> | M off   the maintenance switch file
//   D <path>\t<avail KiB>\t<use%>\t<mount>   disk free where releases and dumps go
//   B <path>\t<bytes>\t<mtime>                 the newest dump
import { sh, type Shell } from '../shell/quote.js';
import type { AppFacts } from './hosts.js';

export interface StatusPlaces {
  facts: AppFacts;
  /** Where this host's dumps go, when it is the backup host. */
  backupDir?: string;
}

const SHOW = 'Id,ActiveState,SubState,Result,NRestarts,ActiveEnterTimestamp,StateChangeTimestamp,ExecMainStatus,LastTriggerUSec,NextElapseUSecRealtime';
const LAST_LINES = 10;

/** The systemd units that may run the app here (globs): what the roles name them. */
export function appUnits(f: AppFacts): string[] {
  const units = new Set<string>([`${f.appServiceName}.service`, `${f.appServiceName}@*.service`, `${f.appName}-*`]);
  for (const g of f.daemons) units.add(`${g.unit}.service`);
  for (const g of f.timers) units.add(`${g.unit}.service`).add(`${g.unit}.timer`);
  for (const g of f.rq) units.add(`${g.unit}@*.service`);
  return [...units];
}

export function statusSnippet(p: StatusPlaces, nonce: string): string {
  const f = p.facts;
  // A host that runs none of the app (a database server) has no release and no app processes.
  const runsApp = f.deploys || (f.appServer !== '' && f.appServer !== 'none') || f.rq.length + f.daemons.length + f.timers.length > 0;
  const parts: Shell[] = [sh`keel_N=${nonce}`, ...(runsApp ? appParts(f, nonce) : []), ...hostParts(p, nonce)];
  return parts.map((x) => x.text).join('\n') + '\n';
}

/** The live release, the check hooks, the app's supervisor programs and systemd units. */
function appParts(f: AppFacts, nonce: string): Shell[] {
  const N = sh`${nonce}`;
  const cur = `${f.appRoot}/current`;
  const checks = `/etc/keel/apps/${f.appName}/check.d`;
  const units = appUnits(f);
  const lastLines = sh`journalctl --no-pager -q -o short-iso -n ${LAST_LINES} -u "$keel_u" 2>/dev/null | sed "s/^/$keel_N f /"
    keel_out=$(systemctl cat -- "$keel_u" 2>/dev/null | sed -n 's/^Standard\\(Output\\|Error\\)=\\(append\\|file\\)://p' | head -n 1)
    if [ -n "$keel_out" ] && [ -r "$keel_out" ]; then tail -n ${LAST_LINES} -- "$keel_out" | sed "s/^/$keel_N f /"; fi`;
  return [
    // The live release: the switch renamed `current` into place, so its own mtime is when.
    sh`if [ -L ${cur} ]; then
  printf '%s R live %s\\n' ${N} "$(readlink -- ${cur} | sed 's#^releases/##')"
  printf '%s R since %s\\n' ${N} "$(stat -c %Y -- ${cur})"
  printf '%s R sha %s\\n' ${N} "$(cat -- ${cur + '/REVISION'} 2>/dev/null)"
  sed -n 's/^branch=/'"$keel_N"' R branch /p; s/^deployed_by=/'"$keel_N"' R by /p' -- ${cur + '/.keel-release'} 2>/dev/null
fi`,
    sh`for keel_h in ${checks}/*; do
  [ -x "$keel_h" ] || continue
  "$keel_h" </dev/null >/dev/null 2>&1; keel_rc=$?
  printf '%s C %s %s\\n' ${N} "\${keel_h##*/}" "$keel_rc"
done`,
    sh`if command -v supervisorctl >/dev/null 2>&1; then supervisorctl status 2>/dev/null | sed "s/^/$keel_N S /"
  supervisorctl status 2>/dev/null | awk '$2 ~ /^(FATAL|BACKOFF|EXITED)$/ {print $1}' | while read -r keel_p; do
    printf '%s X %s\\n' ${N} "$keel_p"; supervisorctl tail -2000 "$keel_p" 2>/dev/null | tail -n ${LAST_LINES} | sed "s/^/$keel_N x /"
  done
fi`,
    sh`if command -v systemctl >/dev/null 2>&1; then
  for keel_u in $(systemctl list-units --all --plain --no-legend --full -- ${units} 2>/dev/null | awk '{print $1}'); do
    systemctl show --timestamp=unix -p ${SHOW} -- "$keel_u" 2>/dev/null | sed "s/^/$keel_N P $keel_u /"
    case "$(systemctl show -p ActiveState --value -- "$keel_u")/$(systemctl show -p SubState --value -- "$keel_u")" in
    failed/*|activating/auto-restart) printf '%s F %s\\n' ${N} "$keel_u"
    ${lastLines} ;;
    esac
  done
fi`,
  ];
}

/** nginx and the maintenance switch, disk free, the newest dump. */
function hostParts(p: StatusPlaces, nonce: string): Shell[] {
  const f = p.facts;
  const N = sh`${nonce}`;
  const parts: Shell[] = [];
  if (f.web) {
    parts.push(
      sh`keel_since=$(systemctl show --timestamp=unix -p ActiveEnterTimestamp --value nginx 2>/dev/null)
printf '%s N %s %s\\n' ${N} "$(systemctl is-active nginx 2>/dev/null)" "$keel_since"`,
      sh`if [ -e ${f.maintenanceFile} ]; then printf '%s M on %s\\n' ${N} "$(stat -c %Y -- ${f.maintenanceFile})"; else printf '%s M off\\n' ${N}; fi`,
    );
  }
  const disks = [`${f.appRoot}`, ...(p.backupDir ? [p.backupDir] : [])];
  parts.push(sh`for keel_d in ${disks}; do [ -d "$keel_d" ] || continue
  df -Pk -- "$keel_d" | awk -v p="$keel_d" -v n="$keel_N" 'NR == 2 {printf "%s D %s\\t%s\\t%s\\t%s\\n", n, p, $4, $5, $6}'
done`);
  if (p.backupDir) {
    const newest = sh`ls -1t -- ${p.backupDir}/*.dump 2>/dev/null | head -n 1`;
    parts.push(
      sh`keel_b=$(${newest})
if [ -n "$keel_b" ]; then printf '%s B %s\\t%s\\t%s\\n' ${N} "$keel_b" "$(stat -c %s -- "$keel_b")" "$(stat -c %Y -- "$keel_b")"; fi`,
    );
  }
  return parts;
}
