// Ordered steps on one host in one round trip, each with its exit status and output.
//
// Each step runs in its own `set -e` subshell with stdout+stderr captured to a file; a status
// line (nonce-prefixed, so command output cannot fake it) says it began (B), completed (C) or
// failed (F) with its exit code, the last 4000 bytes of its output base64-encoded, and, when
// timed, how long it took. By default the first failure stops the script; a step marked
// `continue` (a handler) does not. Provision's apply script and every deploy phase use this.
//
// The status lines are read as they arrive (StepLines), so the controller knows which step runs
// and which ended while the script still runs. With `streamOutput`, each line a step writes is
// sent too, as it is written, as an O line: the step still writes to its file (a dropped
// connection cannot make it fail on a closed pipe, a daemon it starts cannot hold the script
// open), and `tail --pid` follows that file until the step has exited.
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
  /** Send each line of each step's output as it is written (O lines). */
  streamOutput?: boolean;
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

/** keel_follow PID: each line of the output file as an O line until step PID has exited (GNU
 *  tail checks every 10 ms), then PID's exit status. Without tail --pid, only the status. sed -u
 *  passes each line on as it comes (mawk would wait for a buffer full); the newline after it
 *  ends a last line that had none, before the status line. */
function followHelper(nonce: string): string {
  return `keel_follow() { tail -s 0.01 -n +1 --pid="$1" -f -- "$KEEL_RUN_DIR/out" 2>/dev/null | sed -u ${sh`${`s/^/${nonce} O /`}`}; printf '\\n'; wait "$1"; }
`;
}

/** A step's commands, run with their output in the file, and `keel_rc` set to their status. */
function stepBody(step: Step, stream: boolean): string {
  const commands = `(\nset -e\n${joinShell(step.commands)}\n)`;
  if (!stream) return `${commands} >"$KEEL_RUN_DIR/out" 2>&1 </dev/null\nkeel_rc=$?\n`;
  return `: >"$KEEL_RUN_DIR/out"\n${commands} >>"$KEEL_RUN_DIR/out" 2>&1 </dev/null &\nkeel_follow $!\nkeel_rc=$?\n`;
}

/** The shell of `steps` (needs PRELUDE and RUN_DIR before it, and KEEL_STATE to exist). */
export function stepsBody(nonce: string, steps: Step[], opts: StepsOptions = {}): string {
  const N = sh`${nonce}`;
  let s = stepHelpers(N) + (opts.streamOutput ? followHelper(nonce) : '');
  s += opts.timed ? '' : 'keel_t0=\n';
  for (const step of steps) {
    const body = stepBody(step, !!opts.streamOutput);
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

/** What a status line says, as it arrives. */
export type StepEvent =
  | { type: 'begin'; key: string }
  /** A line the running step wrote (streamOutput). */
  | { type: 'output'; key: string; line: string }
  | { type: 'end'; step: StepOutcome };

/** Reads a steps script's stdout one line at a time: the events, and the outcomes so far. */
export class StepLines {
  readonly steps: StepOutcome[] = [];
  /** The step that has begun and not ended (yet). */
  begun: string | undefined;
  private readonly prefix: string;

  constructor(nonce: string) {
    this.prefix = nonce + ' ';
  }

  read(line: string): StepEvent | undefined {
    if (!line.startsWith(this.prefix)) return undefined;
    if (line.startsWith('O ', this.prefix.length)) {
      return this.begun === undefined ? undefined : { type: 'output', key: this.begun, line: line.slice(this.prefix.length + 2) };
    }
    const [, tag, key, code, ms, b64] = line.split(' ');
    if (!key) return undefined;
    const durationMs = ms && ms !== '-' ? Number(ms) : undefined;
    const output = b64 ? Buffer.from(b64, 'base64').toString('utf8') : undefined;
    let step: StepOutcome;
    if (tag === 'B') {
      this.begun = key;
      return { type: 'begin', key };
    } else if (tag === 'C') {
      step = { key, status: 'changed', ...(output !== undefined && { output }), ...(durationMs !== undefined && { durationMs }) };
    } else if (tag === 'F') {
      step = { key, status: 'failed', code: Number(code), output: output ?? '', ...(durationMs !== undefined && { durationMs }) };
    } else return undefined;
    this.steps.push(step);
    this.begun = undefined;
    return { type: 'end', step };
  }
}

/** The status lines of `output`. */
export function parseSteps(output: string, nonce: string): ParsedSteps {
  const lines = new StepLines(nonce);
  for (const line of output.split('\n')) lines.read(line);
  return { steps: lines.steps, interruptedKey: lines.begun };
}

export interface StepsRun extends ParsedSteps {
  /** Steps that did not run because an earlier one failed (or the script ended early). */
  notRun: string[];
  code: number | null;
  stderr: string;
}

export interface RunStepsOptions extends StepsOptions {
  /** Shell run first in the same script (a lock check). */
  prefix?: string;
  /** Hides secrets in the captured outputs and in every event. */
  mask?: (s: string) => string;
  timeoutMs?: number;
  /** Each step's begin, output lines (with streamOutput) and end, as they arrive. */
  onStepEvent?: (e: StepEvent) => void;
}

/** Run `steps` on the host in one round trip. */
export async function runSteps(session: HostSession, steps: Step[], opts: RunStepsOptions = {}): Promise<StepsRun> {
  const nonce = newNonce();
  const script = wrap(
    PRELUDE + (opts.prefix ?? '') + RUN_DIR + `mkdir -p -- "$KEEL_STATE" && chmod 700 -- "$KEEL_STATE" || exit 98\n` + stepsBody(nonce, steps, opts),
  );
  const mask = opts.mask ?? ((s: string) => s);
  const onEvent = opts.onStepEvent;
  const live = new StepLines(nonce);
  const onStdoutLine =
    onEvent &&
    ((line: string) => {
      const e = maskEvent(live.read(line), mask);
      if (e) onEvent(e);
    });
  const r = await session.runScript(script, { timeoutMs: opts.timeoutMs ?? 3_600_000, ...(onStdoutLine && { onStdoutLine }) });
  const parsed = parseSteps(r.stdout, nonce);
  for (const st of parsed.steps) if (st.output !== undefined) st.output = mask(st.output);
  const seen = new Set(parsed.steps.map((s) => s.key));
  return { ...parsed, notRun: steps.map((s) => s.key).filter((k) => !seen.has(k)), code: r.code, stderr: mask(r.stderr) };
}

function maskEvent(e: StepEvent | undefined, mask: (s: string) => string): StepEvent | undefined {
  if (e?.type === 'output') return { ...e, line: mask(e.line) };
  if (e?.type === 'end' && e.step.output !== undefined) return { type: 'end', step: { ...e.step, output: mask(e.step.output) } };
  return e;
}

/** Who follows a run's steps as they happen, on every host and in every phase (deploy). */
export interface StepWatcher {
  onEvent(host: string, phase: string, e: StepEvent): void;
  /** Stream the steps' output lines too (`-v`). */
  output?: boolean;
}

/** runSteps options for `watcher`, on `host` in `phase`. */
export function watchSteps(watcher: StepWatcher | undefined, host: string, phase: string): Pick<RunStepsOptions, 'onStepEvent' | 'streamOutput'> {
  if (!watcher) return {};
  return { onStepEvent: (e) => watcher.onEvent(host, phase, e), streamOutput: !!watcher.output };
}
