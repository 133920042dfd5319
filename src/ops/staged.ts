// A script staged on the host for a process of its own (keel exec, keel logs): written through
// the run's shell (sudo included) to a 0600 file in keel's state directory, then run on its
// own channel with `exec sh FILE`. Its text never travels on a command line, where any user
// of the host could read it (a task may hold a secret); the script removes the file first.
import { KeelError, lastLines } from '../errors.js';
import { PRELUDE, newNonce, wrap } from '../engine/script-parts.js';
import { sh, type Shell } from '../shell/quote.js';
import type { HostSession } from '../ssh/types.js';

/** Write `body` to a new file on the host; its path. Files left by processes that never
 *  started are removed after an hour. */
export async function stage(session: HostSession, body: Shell): Promise<string> {
  const nonce = newNonce();
  const script = `${PRELUDE}keel_run="$KEEL_STATE/run"
mkdir -p -- "$keel_run" && chmod 700 -- "$keel_run" || exit 1
find "$keel_run" -type f -mmin +60 -exec rm -f -- {} + 2>/dev/null
keel_f=$(mktemp "$keel_run/op.XXXXXX") || exit 1
${sh`printf '%s' ${'rm -f -- "$0"\n' + body.text} > "$keel_f"`.text} || exit 1
printf '%s %s\\n' ${sh`${nonce}`.text} "$keel_f"
`;
  const r = await session.runScript(wrap(script), { timeoutMs: 60_000 });
  const path = new RegExp(`^${nonce} (/\\S+)$`, 'm').exec(r.stdout)?.[1];
  if (r.code !== 0 || !path) {
    throw new KeelError(`${session.host}: could not write the command's script (exit ${r.code}):\n${lastLines(r.stderr || r.stdout, 6)}`);
  }
  return path;
}

/** The command line that runs a staged script. */
export function runStaged(path: string): Shell {
  return sh`exec sh ${path}`;
}
