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

export function wrap(body: string): string {
  return `keel_main() {\n${body}\n}\nkeel_main </dev/null\n`;
}
