// The steps of each deploy phase on one host, as shell (run by engine/steps.ts: one round trip
// per phase and host, each step's status, time and output). Every value is quoted by `sh`;
// the archive, the deploy key and the database password travel inside the script (stdin),
// never on a command line.
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import type { Step } from '../engine/steps.js';
import type { HostDeploy } from './config.js';
import type { Source } from './source.js';

/** Run `code` as the app user in `dir`, with the app's environment and $PYTHON of the release.
 *  The code (keel's, or the author's build commands as written) travels on stdin to runuser's
 *  shell as a quoted value: no argv, it may hold anything. */
export function asApp(h: HostDeploy, dir: string, code: string | Shell): Shell {
  const venv = sh`VIRTUAL_ENV="$PWD/.venv"; PATH="$VIRTUAL_ENV/bin:$PATH"; export VIRTUAL_ENV`;
  const python = sh`if [ -x .venv/bin/python ]; then PYTHON="$PWD/.venv/bin/python"; ${venv}; else PYTHON=${h.python}; fi`;
  const boot = sh`set -e; cd "$1"; set -a; if [ -r "$2" ]; then . "$2"; fi; set +a; ${python}; export PYTHON PATH; eval "$(cat)"`;
  return sh`printf '%s\\n' ${String(code)} | runuser -u ${h.appUser} -- sh -c ${boot.text} keel ${dir} ${h.envFile}`;
}

export function releaseDir(h: HostDeploy, id: string): string {
  return `${h.appRoot}/releases/${id}`;
}

/** A waiting step's exit code when its round ended before what it waits for was seen
 *  (EX_TEMPFAIL): the controller runs it again until the deadline (Phases.waitPhase). */
export const NOT_YET = 75;

export interface LiveState {
  live: string;
  sha: string;
  venv: string;
  /** The web server's live slot (a or b; "" before the first deploy or without one). */
  slot: string;
}

/** Where the host is now: the live release, its sha, its virtualenv and the web server's live
 *  slot (first script of a run). */
export function liveStateSnippet(h: HostDeploy, nonce: string): Shell {
  const cur = `${h.appRoot}/current`;
  const slot = h.appctl ? sh`"$(${h.appctl} live-slot 2>/dev/null)"` : raw('""');
  return sh`printf '%s live %s\\n' ${nonce} "$(readlink -- ${cur} 2>/dev/null | sed 's#^releases/##')"
printf '%s sha %s\\n' ${nonce} "$(cat -- ${cur + '/REVISION'} 2>/dev/null)"
printf '%s venv %s\\n' ${nonce} "$(readlink -- ${cur + '/.venv'} 2>/dev/null | sed 's#^.*/##')"
printf '%s slot %s\\n' ${nonce} ${slot}
`;
}

export function parseLiveState(stdout: string, nonce: string): LiveState {
  const get = (k: string) => new RegExp(`^${nonce} ${k} (.*)$`, 'm').exec(stdout)?.[1]?.trim() ?? '';
  return { live: get('live'), sha: get('sha'), venv: get('venv'), slot: get('slot') };
}

/** Stops when the release's directory exists already. Its id is <time to the second>-<sha>:
 *  a run of the same commit started in the same second (two pipelines, one waiting for the
 *  other's lock) has the same id, and must touch neither that release nor its dump. */
export function releaseFreeSteps(h: HostDeploy, id: string): Step[] {
  const dir = releaseDir(h, id);
  return [{ key: 'free', commands: [sh`if [ -e ${dir} ]; then echo ${`${dir} exists already`} >&2; exit 1; fi`, sh`echo ${`${id} is new here`}`] }];
}

/** Build the release: code, REVISION, the virtualenv (reused by key), build commands, hooks. */
export function buildSteps(
  h: HostDeploy,
  o: { id: string; src: Source; archive?: Buffer; archiveSha256?: string; venvKey: string; deployKey: string; knownHosts: string; by: string },
): Step[] {
  const dir = releaseDir(h, o.id);
  const venv = `${h.appRoot}/venvs/${o.venvKey}`;
  // What the app can read of itself: its commit (REVISION) and its release (RELEASE).
  const revision = sh`printf '%s\n' ${o.src.sha} > REVISION; printf '%s\n' ${o.id} > RELEASE`;
  const info = { branch: o.src.branch, sha: o.src.sha, release: o.id, deployed_by: o.by, venv: o.venvKey, archive_sha256: o.archiveSha256 ?? '' };
  const releaseInfo = sh`printf '%s\n' ${Object.entries(info).map(([k, v]) => `${k}=${v}`)} > .keel-release`;
  const steps: Step[] = [
    {
      key: 'release-dir',
      commands: [
        sh`if [ -e ${dir} ]; then echo ${dir + ' already exists'} >&2; exit 1; fi`,
        sh`install -d -o ${h.appUser} -g ${h.appGroup} -m 0750 -- ${h.appRoot + '/releases'} ${h.appRoot + '/venvs'} ${dir}`,
      ],
    },
    { key: 'code', commands: o.src.kind === 'local' ? unpack(h, dir, o.archive!) : clone(h, dir, o.src, o.deployKey, o.knownHosts) },
    {
      key: 'revision',
      commands: [asApp(h, dir, sh`${revision}; ${releaseInfo}`)],
    },
    {
      key: 'virtualenv',
      commands: [
        // Made once per key; a half-made one (no marker) is made again.
        sh`if [ -f ${venv + '/.keel-complete'} ]; then echo 'reused the virtualenv of an earlier release (same requirements)'; else`,
        sh`rm -rf -- ${venv}`,
        asApp(h, dir, venvScript(h, venv)),
        raw('fi'),
        asApp(h, dir, sh`ln -sfn ${'../../venvs/' + o.venvKey} .venv`),
      ],
    },
    ...hookSteps(h, dir, 'before_build'),
    ...h.buildCommands.map((cmd, i) => ({ key: `build-${i + 1}`, commands: [sh`echo ${'$ ' + cmd}`, asApp(h, dir, cmd)] })),
    ...hookSteps(h, dir, 'after_build'),
    // Written last, by the build itself: only a release whose build completed can go live or
    // be rolled back to (an interrupted one has none, whatever marked it or not).
    { key: 'built', commands: [asApp(h, dir, sh`date -u +%Y-%m-%dT%H:%M:%SZ > .keel-built`)] },
  ];
  return steps;
}

function venvScript(h: HostDeploy, venv: string): Shell {
  // No requirement at all (an app on Debian's packages, seen through --system-site-packages):
  // no pip in the virtualenv either, which saves most of the time making one takes.
  const hasReqs = h.requirements ? sh`[ -f ${h.requirements} ] && grep -qvE '^[[:space:]]*(#|$)' ${h.requirements}` : raw('false');
  const s: Shell[] = [sh`if ${hasReqs}; then keel_pip=; else keel_pip=--without-pip; fi`, sh`"$PYTHON" -m venv --system-site-packages $keel_pip ${venv}`];
  if (h.pipIndexUrl) s.push(sh`export PIP_INDEX_URL=${h.pipIndexUrl}`);
  if (h.wheelhouse) s.push(sh`export PIP_NO_INDEX=1 PIP_FIND_LINKS=${h.wheelhouse}`);
  if (h.requirements) {
    const install = sh`${venv + '/bin/pip'} install --disable-pip-version-check --no-input -r ${h.requirements}`;
    const noPip = sh`echo ${'no requirement in ' + h.requirements + ': a virtualenv without pip'}`;
    s.push(sh`if [ -z "$keel_pip" ]; then ${install}; else ${noPip}; fi`);
  }
  s.push(sh`touch ${venv + '/.keel-complete'}`);
  return joinShell(s);
}

function unpack(h: HostDeploy, dir: string, archive: Buffer): Shell[] {
  // A quoted here-document of base64 (no quote or $ can occur in it).
  const b64 = archive.toString('base64').replace(/(.{76})/g, '$1\n');
  return [
    sh`base64 -d <<'KEEL_EOF' | runuser -u ${h.appUser} -- tar -xzf - -C ${dir}\n${raw(b64)}\nKEEL_EOF`,
    sh`echo ${'unpacked ' + archive.length + ' bytes (gzip)'}`,
  ];
}

/** A git URL: cloned on the host with the deploy key (a 0600 file in a private temp dir, gone
 *  after), then the commit's tree (or the subdir's) copied into the release without .git. */
function clone(h: HostDeploy, dir: string, src: Source, key: string, knownHosts: string): Shell[] {
  const tree = src.subdir ? `${src.sha}:${src.subdir}` : src.sha;
  return [
    asApp(
      h,
      dir,
      joinShell([
        gitAccess(key, knownHosts),
        sh`git clone --quiet --no-checkout --branch ${src.branch} -- ${src.repo} "$keel_g/src"`,
        sh`git -C "$keel_g/src" archive --format=tar ${tree} | tar -xf - -C ${dir}`,
      ]),
    ),
  ];
}

/** The sha a branch names on a git URL, asked from one host (ls-remote with the deploy key). */
export function lsRemoteScript(h: HostDeploy, src: Source, key: string, knownHosts: string): Shell {
  return asApp(h, '/', joinShell([gitAccess(key, knownHosts), sh`git ls-remote -- ${src.repo} ${'refs/heads/' + src.branch}`]));
}

/** The deploy key (0600, in a private temp dir gone at exit) and the git server's known key. */
function gitAccess(key: string, knownHosts: string): Shell {
  return joinShell([
    raw(`keel_g=$(mktemp -d); trap 'rm -rf -- "$keel_g"' EXIT; chmod 700 "$keel_g"`),
    ...(key ? [sh`printf '%s\n' ${key.trim()} > "$keel_g/key"; chmod 600 "$keel_g/key"`] : []),
    sh`printf '%s\n' ${knownHosts.trim()} > "$keel_g/known_hosts"`,
    raw(
      'export GIT_SSH_COMMAND="ssh -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile=$keel_g/known_hosts -o StrictHostKeyChecking=yes' +
        `${key ? ' -i $keel_g/key' : ''}"`,
    ),
  ]);
}

export function hookSteps(h: HostDeploy, dir: string, name: string): Step[] {
  return (h.hooks[name] ?? []).map((cmd, i) => ({ key: `${name}-${i + 1}`, commands: [sh`echo ${'$ ' + cmd}`, asApp(h, dir, cmd)] }));
}

export function migrateSteps(h: HostDeploy, id: string, command: string): Step[] {
  const dir = releaseDir(h, id);
  // Only the end of a step's output comes back, and a traceback can push out the line
  // that says which migration it was: repeat that line last.
  const lastMigration = sh`grep -E 'Applying [A-Za-z0-9_.]+\\.\\.\\.|Running upgrade' "$KEEL_RUN_DIR/migrate.log" | tail -n 1`;
  const failed = sh`{ keel_rc=$?; cat "$KEEL_RUN_DIR/migrate.log"; ${lastMigration}; exit "$keel_rc"; }`;
  return [
    ...hookSteps(h, dir, 'before_migrate'),
    ...(command
      ? [
          {
            key: 'migrate',
            commands: [
              sh`echo ${'$ ' + command}`,
              sh`${asApp(h, dir, command)} > "$KEEL_RUN_DIR/migrate.log" 2>&1 || ${failed}`,
              raw('cat "$KEEL_RUN_DIR/migrate.log"'),
            ],
          },
        ]
      : []),
    ...hookSteps(h, dir, 'after_migrate'),
  ];
}

/** `current` -> releases/<id>, atomically: a new link renamed over the old one (`ln -sfn`
 *  unlinks first, so for an instant there would be no `current`). */
export function switchSteps(h: HostDeploy, id: string): Step[] {
  const cur = `${h.appRoot}/current`;
  const next = `${h.appRoot}/.current.keel-new`;
  return [
    {
      key: 'switch',
      commands: [
        sh`[ -d ${releaseDir(h, id)} ] || { echo ${'release ' + id + ' is not on this host'} >&2; exit 1; }`,
        sh`keel_from=$(readlink -- ${cur} 2>/dev/null || echo none)`,
        sh`readlink -f -- ${cur + '/.venv'} > "$KEEL_RUN_DIR/venv-before" 2>/dev/null || :`,
        sh`rm -f -- ${next}; ln -s -- ${'releases/' + id} ${next}; chown -h ${h.appUser + ':' + h.appGroup} -- ${next}`,
        sh`mv -Tf -- ${next} ${cur}`,
        sh`echo "switched $keel_from -> ${raw(id)}"`,
      ],
    },
  ];
}

/** Back to no release at all (a first deploy that failed its health check): the reload hooks
 *  then stop what runs the app. */
export function unlinkSteps(h: HostDeploy): Step[] {
  return [{ key: 'unlink', commands: [sh`rm -f -- ${h.appRoot + '/current'}`, sh`echo ${'no release was live before: ' + h.appRoot + '/current removed'}`] }];
}

/** Workers stop taking jobs now, on every host at once, before `current` moves: the roles'
 *  quiesce hooks (a warm shutdown that does not wait). Their reload hooks wait for them and
 *  start them on the new release, so no job runs on the old code after the switch. */
export function quiesceSteps(h: HostDeploy): Step[] {
  const dir = `/etc/keel/apps/${h.appName}/quiesce.d`;
  return [
    {
      key: 'quiesce',
      commands: [sh`for keel_h in ${dir}/*; do [ -x "$keel_h" ] || continue; echo "== $keel_h"; "$keel_h" </dev/null; done`],
    },
  ];
}

/** The processes that run the app's code take the new release: the roles' reload hooks.
 *  `auto`: the virtualenv changed if it differs from the one a switch in the same script saw. */
export function reloadSteps(h: HostDeploy, venvChanged: boolean | 'auto'): Step[] {
  const dir = `/etc/keel/apps/${h.appName}/reload.d`;
  const changed =
    venvChanged === 'auto'
      ? sh`if [ "$(readlink -f -- ${h.appRoot + '/current/.venv'})" = "$(cat "$KEEL_RUN_DIR/venv-before" 2>/dev/null)" ]; then keel_vc=0; else keel_vc=1; fi`
      : raw(`keel_vc=${venvChanged ? 1 : 0}`);
  const runHook = sh`keel_n=$((keel_n + 1)); echo "== $keel_h"; KEEL_VENV_CHANGED=$keel_vc "$keel_h" </dev/null`;
  return [
    {
      key: 'reload',
      commands: [
        changed,
        sh`keel_n=0; for keel_h in ${dir}/*; do [ -x "$keel_h" ] || continue; ${runHook}; done`,
        sh`[ "$keel_n" -gt 0 ] || echo ${'no reload hooks in ' + dir + ' (nothing runs the app here?)'}`,
      ],
    },
  ];
}

/** After the switch. Web hosts: the health path through nginx answers 2xx (nginx sends
 *  traffic to the new release: its own checks passed before). Every host: the check hooks pass
 *  (each process up for its minimum uptime). During maintenance nginx answers only
 *  nginx_health_path: a different deploy_health_path is not asked through it then. */
export function healthSteps(h: HostDeploy, o: { maintenance: boolean; roundSeconds: number }): Step[] {
  const steps: Step[] = [];
  const checks = `/etc/keel/apps/${h.appName}/check.d`;
  const deadline = sh`keel_end=$(( $(date +%s) + ${o.roundSeconds} ))`;
  const pastDeadline = sh`[ "$(date +%s)" -ge "$keel_end" ]`;
  if (h.web && h.healthPath) {
    if (o.maintenance && h.nginxHealthPath !== h.healthPath) {
      steps.push({
        key: 'health-web',
        commands: [sh`echo ${`maintenance is on and nginx answers ${h.nginxHealthPath || 'no path'} during it, not ${h.healthPath}: not asked through nginx`}`],
      });
    } else {
      const get = sh`curl -s -o "$KEEL_RUN_DIR/body" -w '%{http_code}' --max-time 5 -H ${'Host: ' + h.healthHost} ${'http://127.0.0.1' + h.healthPath}`;
      const notYet = sh`printf 'GET %s through nginx answered %s:\\n' ${h.healthPath} "$keel_code" >&2; head -c 2000 "$KEEL_RUN_DIR/body" >&2; exit ${NOT_YET}`;
      steps.push({
        key: 'health-web',
        commands: [
          deadline,
          sh`while :; do keel_code=$(${get} || true)`,
          sh`case "$keel_code" in 2??) printf 'GET %s through nginx: %s\\n' ${h.healthPath} "$keel_code"; break ;; esac`,
          sh`if ${pastDeadline}; then ${notYet}; fi`,
          raw('sleep 0.5; done'),
        ],
      });
    }
  }
  // A check hook exits 0 when its processes are up (and have been for their minimum uptime),
  // 1 while they start, 2 when they failed (a crash loop): that fails at once, not at the deadline.
  const failed = sh`printf '%s failed:\\n%s\\n' "$(basename "$keel_h")" "$keel_said" >&2; exit 1`;
  const notUp = sh`printf '%s not up yet:\\n%s\\n' "$(basename "$keel_h")" "$keel_said" >&2; exit ${NOT_YET}`;
  const retry = sh`keel_rc=$?; if [ "$keel_rc" -ge 2 ]; then ${failed}; fi; if ${pastDeadline}; then ${notUp}; fi; sleep 0.5`;
  const waitFor = sh`until keel_said=$("$keel_h" </dev/null 2>&1); do ${retry}; done`;
  steps.push({
    key: 'health-processes',
    commands: [deadline, sh`for keel_h in ${checks}/*; do [ -x "$keel_h" ] || continue; ${waitFor}; echo "running: $(basename "$keel_h")"; done`],
  });
  return steps;
}

/** While a switch is on, the timers' jobs wait (role timer reads the hold file: the time it
 *  ends, so one left by a run that died stops holding them after a while). */
export function holdSteps(h: HostDeploy, on: boolean): Step[] {
  const file = h.holdFile;
  if (!on) return [{ key: 'hold-off', commands: [sh`rm -f -- ${file}`] }];
  return [
    {
      key: 'hold',
      commands: [
        sh`install -d -m 0755 -- ${file.replace(/\/[^/]*$/, '')}`,
        sh`echo $(( $(date +%s) + ${HOLD_SECONDS} )) > ${file + '.new'}; mv -f -- ${file + '.new'} ${file}`,
      ],
    },
  ];
}

/** The longest a hold lasts: a switch's phases, each bounded by minutes at most. */
const HOLD_SECONDS = 900;

export function markFailedSteps(h: HostDeploy, id: string, reason: string): Step[] {
  const dir = releaseDir(h, id);
  return [{ key: 'mark-failed', commands: [sh`if [ -d ${dir} ]; then printf '%s\n' ${reason} > ${dir + '/.keel-failed'}; fi`] }];
}

const PLAIN_MAINTENANCE_PAGE = '<!doctype html><title>Maintenance</title><h1>Down for maintenance</h1><p>We will be back in a few minutes.</p>';

export function maintenanceSteps(h: HostDeploy, on: boolean): Step[] {
  const file = h.maintenanceFile;
  const off = file.replace(/_on\.html$/, '_off.html');
  if (!on) {
    return [
      {
        key: 'maintenance-off',
        commands: [
          sh`if [ -e ${file} ]; then rm -f -- ${file}; echo ${'maintenance off: ' + file + ' removed'}`,
          sh`else echo ${'maintenance was already off (no ' + file + ')'}; fi`,
        ],
      },
    ];
  }
  return [
    {
      key: 'maintenance-on',
      commands: [
        // The page of the nginx role (maintenance_off.html) if there is one, else a plain one.
        sh`keel_tmp=$(mktemp -- ${file + '.XXXXXX'})`,
        sh`if [ -f ${off} ] && [ ${off} != ${file} ]; then cat -- ${off} > "$keel_tmp"; else printf '%s\n' ${PLAIN_MAINTENANCE_PAGE} > "$keel_tmp"; fi`,
        sh`chmod 0644 -- "$keel_tmp"; mv -f -- "$keel_tmp" ${file}`,
        sh`echo ${'maintenance on: ' + file}`,
      ],
    },
  ];
}

/** Keep the newest `keepReleases` releases that were built and did not fail (what a rollback
 *  can go to), the live one, `protect` (the previous), and failed or unfinished ones newer than
 *  the oldest kept (so `keel releases` still shows why the last tries failed); then the
 *  virtualenvs no kept release uses. */
export function pruneSteps(h: HostDeploy, protect: string[]): Step[] {
  const rel = `${h.appRoot}/releases`;
  const venvs = h.appRoot + '/venvs';
  const good = sh`[ -e ${rel}/"$keel_r"/.keel-built ] && [ ! -e ${rel}/"$keel_r"/.keel-failed ]`;
  const removeRelease = sh`rm -rf -- ${rel}/"$keel_r"; echo "removed release $keel_r"`;
  // keel_used=1 if a release's .venv links to this virtualenv
  const findUse = sh`for keel_r in ${rel}/*; do [ "$(readlink -- "$keel_r/.venv" 2>/dev/null)" = "../../venvs/$keel_v" ] && keel_used=1; done`;
  const removeVenv = sh`rm -rf -- ${venvs}/"$keel_v"; echo "removed virtualenv $keel_v"`;
  return [
    {
      key: 'prune',
      commands: [
        sh`keel_live=$(readlink -- ${h.appRoot + '/current'} | sed 's#^releases/##')`,
        // Release ids are keel's own (digits, letters, - and Z): safe as words, space-separated.
        sh`keel_keep=; keel_n=0; keel_oldest=`,
        sh`for keel_r in $(ls -1 -- ${rel} | sort -r); do if ${good} && [ "$keel_n" -lt ${h.keepReleases} ]; then`,
        sh`  keel_keep="$keel_keep $keel_r"; keel_n=$((keel_n + 1)); keel_oldest=$keel_r`,
        raw('fi; done'),
        sh`keel_protect=${protect.join(' ')}`,
        // Newest first: a release not good is kept while the oldest good one kept is not yet passed.
        sh`keel_past=; for keel_r in $(ls -1 -- ${rel} | sort -r); do`,
        sh`  case " $keel_keep $keel_live $keel_protect " in *" $keel_r "*) [ "$keel_r" != "$keel_oldest" ] || keel_past=1; continue ;; esac`,
        sh`  if [ -z "$keel_past" ] && [ -n "$keel_oldest" ] && ! { ${good}; }; then continue; fi`,
        sh`  ${removeRelease}`,
        raw('done'),
        sh`echo "kept $keel_n release(s) that can be rolled back to:$keel_keep"`,
        sh`for keel_v in $(ls -1 -- ${venvs} 2>/dev/null); do keel_used=; ${findUse}; [ -n "$keel_used" ] || { ${removeVenv}; }; done`,
      ],
    },
  ];
}
