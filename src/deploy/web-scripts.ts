// The web server's part of a switch of release, on each host that runs one (role app with
// nginx): the new release starts in appctl's idle slot beside the live one, is checked there
// directly (its own socket or port: no user request reaches it), and only then does nginx send
// it traffic; the old slot drains and stops once every host is through. A release that fails
// its checks never serves a request. See roles/app/templates/appctl.sh.hbs and docs/deploy.md.
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import type { Step } from '../engine/steps.js';
import type { HealthCheck, HostDeploy } from './config.js';
import { NOT_YET, asApp, releaseDir } from './scripts.js';

export type Slot = 'a' | 'b';

/** The slot a new release starts in: the one that is not live ('a' before the first deploy). */
export function idleSlot(live: string): Slot {
  return live === 'a' ? 'b' : 'a';
}

export function slotStartSteps(h: HostDeploy, slot: Slot, id: string): Step[] {
  return [
    {
      key: 'start',
      commands: [sh`${h.appctl} slot-start ${slot} ${'releases/' + id}`, sh`echo ${`${id} started in slot ${slot}, beside the live one`}`],
    },
  ];
}

/** The old slot takes the traffic back: it still runs unless something stopped it; if so it
 *  starts again. */
export function slotEnsureSteps(h: HostDeploy, slot: Slot, id: string): Step[] {
  return [{ key: 'old-slot', commands: [sh`${h.appctl} slot-alive ${slot} || ${h.appctl} slot-start ${slot} ${'releases/' + id}`] }];
}

/** A wrong answer this many times in a row is a definite failure: no need to wait out the
 *  timeout, which exists for slow starts (connection refused, 502 from a loading server). */
const DEFINITE_AFTER = 3;

/** The release's health checks against the new slot itself, then the commands in the release.
 *  Waiting for the server ends after `roundSeconds` with NOT_YET (Phases.waitPhase asks again). */
export function slotCheckSteps(h: HostDeploy, slot: Slot, id: string, roundSeconds: number): Step[] {
  const http = h.healthChecks.filter((c): c is Extract<HealthCheck, { path: string }> => 'path' in c);
  const commands = h.healthChecks.filter((c): c is Extract<HealthCheck, { command: string }> => 'command' in c);
  const steps: Step[] = [];
  if (http.length) {
    steps.push({
      key: 'check-web',
      commands: [sh`keel_addr=$(${h.appctl} slot-address ${slot})`, raw(GET_FUNCTION), ...http.map((c) => httpCheck(h, slot, c, roundSeconds))],
    });
  }
  commands.forEach((c, i) => steps.push({ key: `check-command-${i + 1}`, commands: [sh`echo ${'$ ' + c.command}`, asApp(h, releaseDir(h, id), c.command)] }));
  return steps;
}

/** keel_get HOST PATH: the slot's answer (keel_code, 000 when nothing answered; body in a file). */
const GET_FUNCTION = `keel_get() {
  case $keel_addr in
    unix:*) keel_code=$(curl -s -o "$KEEL_RUN_DIR/body" -w '%{http_code}' --max-time 5 --unix-socket "\${keel_addr#unix:}" -H "Host: $1" "http://keel$2") ;;
    *) keel_code=$(curl -s -o "$KEEL_RUN_DIR/body" -w '%{http_code}' --max-time 5 -H "Host: $1" "http://$keel_addr$2") ;;
  esac || :
  [ -n "$keel_code" ] || keel_code=000
}`;

function httpCheck(h: HostDeploy, slot: Slot, c: Extract<HealthCheck, { path: string }>, roundSeconds: number): Shell {
  const want = c.status === undefined ? '2??' : String(c.status);
  const label = `GET ${c.path} on slot ${slot}`;
  const matches = c.contains === undefined ? raw(':') : sh`grep -qF -- ${c.contains} "$KEEL_RUN_DIR/body"`;
  const expected = c.status === undefined ? 'a 2xx answer' : `status ${c.status}`;
  const definite = `, ${DEFINITE_AFTER} times in a row (wanted ${expected}${c.contains === undefined ? '' : ` containing "${c.contains}"`})`;
  // What it answered first (a few lines), the verdict last: a failure's message shows its last lines.
  const said = sh`head -c 2000 "$KEEL_RUN_DIR/body" | head -n 8 >&2; echo >&2; printf '%s answered %s%s\\n' ${label} "$keel_code" "$1" >&2`;
  return joinShell([
    sh`keel_said() { ${said}; }`,
    sh`keel_end=$(( $(date +%s) + ${raw(String(roundSeconds))} )); keel_wrong=0`,
    sh`while :; do keel_get ${h.healthHost} ${c.path}`,
    sh`  case "$keel_code" in ${raw(want)}) if ${matches}; then printf '%s: %s\\n' ${label} "$keel_code"; break; fi ;; esac`,
    sh`  if [ "$keel_code" = 000 ]; then keel_wrong=0`,
    sh`    if ! ${h.appctl} slot-alive ${slot}; then keel_said ', and its server is gone'; ${h.appctl} status >&2; exit 1; fi`,
    sh`  else keel_wrong=$((keel_wrong + 1)); [ "$keel_wrong" -lt ${raw(String(DEFINITE_AFTER))} ] || { keel_said ${definite}; exit 1; }; fi`,
    sh`  if [ "$(date +%s)" -ge "$keel_end" ]; then keel_said ${` (wanted ${expected})`}; exit ${raw(String(NOT_YET))}; fi`,
    raw('  sleep 0.5; done'),
  ]);
}

/** nginx sends traffic to `slot` (it is then the live slot); the old nginx workers finish first. */
export function slotSwitchSteps(h: HostDeploy, slot: Slot): Step[] {
  return [{ key: 'traffic', commands: [sh`${h.appctl} slot-switch ${slot}`, sh`echo ${'nginx sends traffic to slot ' + slot}`] }];
}

/** Stop a slot that is not live any more (its requests in flight finish first). */
export function slotStopSteps(h: HostDeploy, slot: Slot): Step[] {
  return [{ key: 'stop-' + slot, commands: [sh`${h.appctl} slot-stop ${slot}`, sh`echo ${'slot ' + slot + ' stopped'}`] }];
}

/** Nothing was live before (a first deploy undone): no slot runs, none starts at boot. */
export function slotsOffSteps(h: HostDeploy): Step[] {
  return [{ key: 'slots-off', commands: [sh`${h.appctl} stop`, raw("echo 'the app server is stopped: no release was live before'")] }];
}
