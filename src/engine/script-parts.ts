// The pieces every script keel sends to a host starts from (probe, apply, deploy steps).
import { randomBytes } from 'node:crypto';

export function newNonce(): string {
  return '@@keel-' + randomBytes(6).toString('hex');
}

// Every spawn costs a few ms on the host (more in containers): the prelude spawns nothing for
// root (`[ -O / ]`, "/ is mine", is a test builtin in dash, bash, busybox and ksh; `id -u`
// decides where it is not), and only the apply script, which runs commands, gets a temp dir.
export const PRELUDE = `export LC_ALL=C
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
if [ -n "\${KEEL_STATE_DIR:-}" ]; then KEEL_STATE=$KEEL_STATE_DIR
elif [ -O / ] 2>/dev/null || [ "$(id -u)" = 0 ]; then KEEL_STATE=/var/lib/keel
else KEEL_STATE="\${XDG_STATE_HOME:-$HOME/.local/state}/keel"; fi
export KEEL_STATE
`;

export const RUN_DIR = `KEEL_RUN_DIR=$(mktemp -d "\${TMPDIR:-/tmp}/keel-run.XXXXXX") || { echo "keel: cannot create a temporary directory" >&2; exit 97; }
export KEEL_RUN_DIR
trap 'rm -rf -- "$KEEL_RUN_DIR"' EXIT
`;

/** The script as one shell function: `sh -s` reads all of it before any of it runs. */
function defineMain(body: string): string {
  return `keel_main() {\n${body}\n}\n`;
}

export function wrap(body: string): string {
  return defineMain(body) + 'keel_main </dev/null\n';
}

/**
 * wrap, for a script whose output is read only once it has ended (the probe): the output is
 * gathered on the host and written at once. Written as it comes, a 400-resource probe's 36 KB
 * leave sshd in 50 to 130 small packets (each `printf` and each command's own write is one),
 * and every packet costs sshd on the host and keel on the controller a decrypt, a parse and a
 * stream event; gathered, they are two packets. The `.` keeps the output's trailing newlines
 * (command substitution drops them), printed after an inner subshell so that an `exit` in the
 * script (the lock snippet's, when another run holds the lock) cannot skip it; the exit status
 * is the script's. stderr still streams.
 */
export function wrapGathered(body: string): string {
  return (
    defineMain(body) +
    'keel_out=$( (keel_main </dev/null); keel_rc=$?; printf .; exit $keel_rc); keel_rc=$?\n' +
    `printf '%s' "\${keel_out%.}"\n(exit $keel_rc)\n`
  );
}
