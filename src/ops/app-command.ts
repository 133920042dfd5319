// A command of the user's, run in the app's world: the live release's directory, the app user,
// the environment file, $PYTHON and the release's virtualenv first on PATH. It is the
// environment keel deploy gives build commands and migrations (asApp in deploy/scripts.ts),
// made for a live process: the words are exec'd as they are (never re-split by a shell), and
// the chain from sshd to the command is exec after exec, so a signal or the terminal's Ctrl-C
// reaches the command itself.

import { randomBytes } from 'node:crypto';
import { BugError } from '../errors.js';
import { raw, sh, type Shell } from '../shell/quote.js';

export interface AppPlace {
  appUser: string;
  appGroup: string;
  appRoot: string;
  envFile: string;
  /** The interpreter when the release has no .venv (app_python). */
  python: string;
}

/** What the app user's shell does before running the command ($1 dir, $2 env file, $3 python,
 *  then the words; no words: the task's shell line on fd 3). */
const BOOT = [
  'cd -P -- "$1" || exit 125',
  'set -a; if [ -r "$2" ]; then . "$2"; fi; set +a',
  'if [ -x .venv/bin/python ]; then PYTHON="$PWD/.venv/bin/python"; VIRTUAL_ENV="$PWD/.venv"; PATH="$VIRTUAL_ENV/bin:$PATH"; export VIRTUAL_ENV;',
  'else PYTHON=$3; fi',
  'export PYTHON PATH',
  'shift 3',
  'if [ $# -gt 0 ]; then exec "$@"; fi',
  'keel_task=$(cat <&3) || exit 125',
  'exec 3<&-',
  'eval "$keel_task"',
].join('\n');

/** The user's words, exec'd as they are; or a task of the inventory (`deploy_tasks`), the team's
 *  shell line as written, which reaches the app user's shell on a file descriptor: no process
 *  list shows it (it may hold a secret). */
export type AppRun = { words: string[] } | { task: string };

/**
 * Shell, run as root or as the app user, that runs the command as the app user in the live
 * release. Exit 125 (keel's, before the command ran): no live release, or not allowed to
 * become the app user.
 */
export function appCommand(a: AppPlace, run: AppRun, nonce = randomBytes(8).toString('hex')): Shell {
  const current = `${a.appRoot}/current`;
  const noRelease = `no release is live on this host (${current} does not exist): keel deploy puts one there`;
  const notRoot = `keel runs this as ${a.appUser}, but the connection's user is not root and cannot switch: give the host become: true (sudo)`;
  const words = 'words' in run ? run.words : [];
  const boot = sh`sh -c ${BOOT} keel ${current} ${a.envFile} ${a.python} ${words}`;
  // setpriv execs (runuser and su fork and wait): nothing stands between sshd and the command.
  // --reset-env: HOME, USER, LOGNAME, SHELL and PATH of the app user, TERM kept.
  const become = sh`setpriv --reuid=${a.appUser} --regid=${a.appGroup} --init-groups --reset-env -- ${boot}`;
  return sh`if [ ! -d ${current + '/'} ]; then echo ${noRelease} >&2; exit 125; fi
${'task' in run ? taskOnFd3(run.task, nonce) : raw('')}keel_me=$(id -un)
if [ "$keel_me" = ${a.appUser} ]; then exec ${boot}; fi
if [ "$(id -u)" != 0 ]; then echo ${notRoot} >&2; exit 125; fi
exec ${become}
`;
}

/** The task's text as a here-document on fd 3 (quoted delimiter: taken literally). */
function taskOnFd3(task: string, nonce: string): Shell {
  const end = `KEEL_TASK_${nonce}`;
  if (task.split('\n').includes(end)) throw new BugError(`a task holds the here-document delimiter ${end}`);
  return raw(`exec 3<<'${end}'\n${task}\n${end}\n`);
}
