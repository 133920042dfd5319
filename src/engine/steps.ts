// Ordered steps on one host in one round trip, each with its exit status and output.
//
// Each step runs in its own `set -e` subshell with stdout+stderr captured to a file; a status
// line (nonce-prefixed, so command output cannot fake it) says it began (B), completed (C) or
// failed (F) with its exit code, the last 4000 bytes of its output base64-encoded, and, when
// timed, how long it took. By default the first failure stops the script; a step marked
// `continue` (a handler) does not. Provision's apply script and every deploy phase use this.
import { joinShell, sh, type Shell } from '../shell/quote.js';
import type { HostSession } from '../ssh/types.js';
import { PRELUDE, RUN_DIR, newNonce, wrap } from './script-parts.js';

export interface Step {
  /** Unique in the script: a resource index, `H<n>` for a handler, a deploy step name. */
  key: string;
  /** Shell, run in order under `set -e` in one subshell. */
  commands: Shell[];
  /** Handler ids to write to the host's pending list once this step succeeded. */
  notify?: string[];
  /** Run only while this handler id is pending on the host; forget it once the step succeeded. */
  handler?: string;
  /** A handler step: skipped while one of these handler ids (handlers that cover it) is
   *  pending; the one that runs forgets it. */
  unlessPending?: string[];
  /** Handler ids to drop from the host's pending list once this step succeeded (what it
   *  covers), before its own `notify`. */
  forget?: string[];
  /** A failure stops the script (default), or the script goes on. */
  onFailure?: 'stop' | 'continue';
}

export interface StepsOptions {
  /** Keep every step's output, not only a failed one's (deploy shows each step's output). */
  captureAll?: boolean;
  /** Measure each step's duration on the host. */
  timed?: boolean;
}

export interface StepOutcome {
  key: string;
  status: 'changed' | 'failed';
  code?: number;
  output?: string;
  durationMs?: number;
}

/** Shell helpers the steps use: the pending-handler list and the status lines. */
function stepHelpers(N: Shell): string {
  return `keel_pending="$KEEL_STATE/pending-handlers"
keel_notify() { for keel_h in "$@"; do grep -qxF -- "$keel_h" "$keel_pending" 2>/dev/null || printf '%s\\n' "$keel_h" >> "$keel_pending"; done; }
keel_forget() { grep -vxF -- "$1" "$keel_pending" > "$keel_pending.tmp" 2>/dev/null; mv -f -- "$keel_pending.tmp" "$keel_pending"; }
keel_due() { grep -qxF -- "$1" "$keel_pending" 2>/dev/null; }
keel_out() { tail -c 4000 -- "$KEEL_RUN_DIR/out" | base64 | tr -d '\\n'; }
keel_ms() { if [ -n "$keel_t0" ]; then keel_t1=$(date +%s%N); echo $(( (keel_t1 - keel_t0) / 1000000 )); else echo -; fi; }
keel_fail() { printf '%s F %s %s %s ' ${N} "$1" "$2" "$(keel_ms)"; keel_out; printf '\\n'; }
`;
}

/** The shell of `steps` (needs PRELUDE and RUN_DIR before it, and KEEL_STATE to exist). */
export function stepsBody(nonce: string, steps: Step[], opts: StepsOptions = {}): string {
  const N = sh`${nonce}`;
  let s = stepHelpers(N);
  s += opts.timed ? '' : 'keel_t0=\n';
  for (const step of steps) {
    const body = `(\nset -e\n${joinShell(step.commands)}\n) >"$KEEL_RUN_DIR/out" 2>&1 </dev/null\nkeel_rc=$?\n`;
    const begin = `printf '%s B %s\\n' ${N} ${sh`${step.key}`}\n${opts.timed ? 'keel_t0=$(date +%s%N)\n' : ''}`;
    const done = opts.captureAll
      ? `printf '%s C %s 0 %s ' ${N} ${sh`${step.key}`} "$(keel_ms)"; keel_out; printf '\\n'\n`
      : `printf '%s C %s 0 %s\\n' ${N} ${sh`${step.key}`} "$(keel_ms)"\n`;
    const forget = (step.forget ?? []).map((id) => sh`keel_forget ${id}\n`).join('');
    const notify = forget + (step.notify?.length ? sh`keel_notify ${step.notify}\n` : '');
    if (step.handler !== undefined) {
      // A failed handler stays pending: it runs again on the next run. One that covers it
      // and is due runs instead (and forgets it).
      const covered = (step.unlessPending ?? []).map((id) => sh` && ! keel_due ${id}`).join('');
      s += sh`if keel_due ${step.handler}` + covered + '; then\n';
      s += begin + body;
      s += `if [ "$keel_rc" -ne 0 ]; then keel_fail ${sh`${step.key}`} "$keel_rc"; ${step.onFailure === 'stop' ? 'return 0; ' : ''}else\n`;
      s += sh`keel_forget ${step.handler}\n` + notify + done + 'fi\nfi\n';
    } else {
      s += begin + body;
      s += `if [ "$keel_rc" -ne 0 ]; then keel_fail ${sh`${step.key}`} "$keel_rc"; ${step.onFailure === 'continue' ? '' : 'return 0; '}else\n`;
      s += notify + done + 'fi\n';
    }
  }
  return s;
}

export interface ParsedSteps {
  steps: StepOutcome[];
  /** The step that had begun when output stopped (connection lost or shell killed mid-step). */
  interruptedKey?: string;
}

/** The status lines of `output` (up to `until`, a marker line that ends the steps' part). */
export function parseSteps(output: string, nonce: string): ParsedSteps {
  const steps: StepOutcome[] = [];
  let begun: string | undefined;
  for (const line of output.split('\n')) {
    if (!line.startsWith(nonce + ' ')) continue;
    const [, tag, key, code, ms, b64] = line.split(' ');
    if (!key) continue;
    const durationMs = ms && ms !== '-' ? Number(ms) : undefined;
    const output = b64 ? Buffer.from(b64, 'base64').toString('utf8') : undefined;
    if (tag === 'B') begun = key;
    else if (tag === 'C') {
      steps.push({ key, status: 'changed', ...(output !== undefined && { output }), ...(durationMs !== undefined && { durationMs }) });
      begun = undefined;
    } else if (tag === 'F') {
      steps.push({ key, status: 'failed', code: Number(code), output: output ?? '', ...(durationMs !== undefined && { durationMs }) });
      begun = undefined;
    }
  }
  return { steps, interruptedKey: begun };
}

export interface StepsRun extends ParsedSteps {
  /** Steps that did not run because an earlier one failed (or the script ended early). */
  notRun: string[];
  code: number | null;
  stderr: string;
}

/**
 * Run `steps` on the host in one round trip. `prefix` is shell run first in the same script
 * (a lock check); `mask` hides secrets in the captured outputs.
 */
export async function runSteps(
  session: HostSession,
  steps: Step[],
  opts: StepsOptions & { prefix?: string; mask?: (s: string) => string; timeoutMs?: number } = {},
): Promise<StepsRun> {
  const nonce = newNonce();
  const script = wrap(
    PRELUDE + (opts.prefix ?? '') + RUN_DIR + `mkdir -p -- "$KEEL_STATE" && chmod 700 -- "$KEEL_STATE" || exit 98\n` + stepsBody(nonce, steps, opts),
  );
  const r = await session.runScript(script, { timeoutMs: opts.timeoutMs ?? 3_600_000 });
  const parsed = parseSteps(r.stdout, nonce);
  const mask = opts.mask ?? ((s: string) => s);
  for (const st of parsed.steps) if (st.output !== undefined) st.output = mask(st.output);
  const seen = new Set(parsed.steps.map((s) => s.key));
  return { ...parsed, notRun: steps.map((s) => s.key).filter((k) => !seen.has(k)), code: r.code, stderr: mask(r.stderr) };
}
