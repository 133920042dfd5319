// A command of the user's, run in the app's world: the live release's directory, the app user,
// the environment file, $PYTHON and the release's virtualenv first on PATH. It is the
// environment keel deploy gives build commands and migrations (asApp in deploy/scripts.ts),
// made for a live process: the words are exec'd as they are (never re-split by a shell), and
// the chain from sshd to the command is exec after exec, so a signal or the terminal's Ctrl-C
// reaches the command itself.
import { sh, type Shell } from '../shell/quote.js';

export interface AppPlace {
  appUser: string;
  appGroup: string;
  appRoot: string;
  envFile: string;
  /** The interpreter when the release has no .venv (app_python). */
  python: string;
}

/** What the app user's shell does before exec'ing the words ($1 dir, $2 env file, $3 python). */
const BOOT = [
  'cd -P -- "$1" || exit 125',
  'set -a; if [ -r "$2" ]; then . "$2"; fi; set +a',
  'if [ -x .venv/bin/python ]; then PYTHON="$PWD/.venv/bin/python"; VIRTUAL_ENV="$PWD/.venv"; PATH="$VIRTUAL_ENV/bin:$PATH"; export VIRTUAL_ENV;',
  'else PYTHON=$3; fi',
  'export PYTHON PATH',
  'shift 3',
  'exec "$@"',
].join('\n');

/**
 * Shell, run as root or as the app user, that execs `words` as the app user in the live
 * release. Exit 125 (keel's, before the command ran): no live release, or not allowed to
 * become the app user.
 */
export function appCommand(a: AppPlace, words: string[]): Shell {
  const current = `${a.appRoot}/current`;
  const noRelease = `no release is live on this host (${current} does not exist): keel deploy puts one there`;
  const notRoot = `keel runs this as ${a.appUser}, but the connection's user is not root and cannot switch: give the host become: true (sudo)`;
  const boot = sh`sh -c ${BOOT} keel ${current} ${a.envFile} ${a.python} ${words}`;
  // setpriv execs (runuser and su fork and wait): nothing stands between sshd and the command.
  // --reset-env: HOME, USER, LOGNAME, SHELL and PATH of the app user, TERM kept.
  const become = sh`setpriv --reuid=${a.appUser} --regid=${a.appGroup} --init-groups --reset-env -- ${boot}`;
  return sh`if [ ! -d ${current + '/'} ]; then echo ${noRelease} >&2; exit 125; fi
keel_me=$(id -un)
if [ "$keel_me" = ${a.appUser} ]; then exec ${boot}; fi
if [ "$(id -u)" != 0 ]; then echo ${notRoot} >&2; exit 125; fi
exec ${become}
`;
}

/** A task of the inventory (`deploy_tasks`): the team's shell line, as written, in that world. */
export function taskWords(command: string): string[] {
  return ['sh', '-c', command];
}
