// Compiles a host's plan into the two scripts that travel to it, and parses what comes back.
//
//  probe script: every resource type's probe, one section per type, plus the handlers still
//                pending from an earlier run. A no-op run is this one round trip.
//  apply script: the commands of each resource that must change, in order, each in a `set -e`
//                subshell with its output captured; stops at the first failure; then the
//                notified handlers; then the probe again, so the controller can verify that
//                every resource converged without another round trip.
//
// The whole script is one shell function, called on the last line: sh parses a function
// completely before running it, so a script cut short in transit runs nothing at all.
// Protocol lines start with a per-run nonce, so command output can't fake them.
import { randomBytes } from 'node:crypto';
import { sh } from '../shell/quote.js';
import type { DecideContext, Facts, ResourceType } from '../resources/types.js';
import { parseFacts } from '../resources/types.js';
import type { PlannedResource } from './plan.js';

export function newNonce(): string {
  return '@@keel-' + randomBytes(6).toString('hex');
}

// Every spawn costs a few ms on the host (more in containers): the prelude spawns nothing for
// root (`[ -O / ]`, "/ is mine", is a test builtin in dash, bash, busybox and ksh; `id -u`
// decides where it is not), and only the apply script, which runs commands, gets a temp dir.
const PRELUDE = `export LC_ALL=C
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
if [ -n "\${KEEL_STATE_DIR:-}" ]; then KEEL_STATE=$KEEL_STATE_DIR
elif [ -O / ] 2>/dev/null || [ "$(id -u)" = 0 ]; then KEEL_STATE=/var/lib/keel
else KEEL_STATE="\${XDG_STATE_HOME:-$HOME/.local/state}/keel"; fi
export KEEL_STATE
`;

const RUN_DIR = `KEEL_RUN_DIR=$(mktemp -d "\${TMPDIR:-/tmp}/keel-run.XXXXXX") || { echo "keel: cannot create a temporary directory" >&2; exit 97; }
export KEEL_RUN_DIR
trap 'rm -rf -- "$KEEL_RUN_DIR"' EXIT
`;

function wrap(body: string): string {
  return `keel_main() {\n${body}\n}\nkeel_main </dev/null\n`;
}

/** The probe part, shared by the probe script and the verification at the end of apply. */
function probeBody(resources: PlannedResource[], nonce: string, ctx: DecideContext): string {
  const byType = groupByType(resources);
  let s = '';
  for (const [type, items] of byType) {
    s += `printf '\\n%s S %s\\n' ${sh`${nonce} ${type.name}`}\n`;
    s += type.probe(items.map((r) => ({ key: String(r.index), params: r.params })), ctx) + '\n';
  }
  s += `printf '\\n%s P\\n' ${sh`${nonce}`}\nif [ -s "$KEEL_STATE/pending-handlers" ]; then cat -- "$KEEL_STATE/pending-handlers" 2>/dev/null; fi\n`;
  s += `printf '\\n%s E\\n' ${sh`${nonce}`}\n`;
  return s;
}

export function buildProbeScript(resources: PlannedResource[], nonce: string, ctx: DecideContext): string {
  return wrap(PRELUDE + probeBody(resources, nonce, ctx));
}

export interface ApplyStep {
  /** Resource index, or `H<n>` for the n-th handler. */
  key: string;
  commands: string[];
  /** Handler ids to remember once this step succeeded. */
  notify: string[];
}

export interface ApplyHandler {
  key: string;
  id: string;
  run: string;
}

export function buildApplyScript(opts: {
  nonce: string;
  steps: ApplyStep[];
  handlers: ApplyHandler[];
  /** Handler ids pending from earlier runs that no longer exist: forget them. */
  forget: string[];
  verify: PlannedResource[];
  ctx: DecideContext;
}): string {
  const N = sh`${opts.nonce}`;
  let s = PRELUDE + RUN_DIR;
  // Once started, finish: a dropped connection must not stop the run between two steps.
  s += `trap '' HUP PIPE
mkdir -p -- "$KEEL_STATE" && chmod 700 -- "$KEEL_STATE" || exit 98
keel_pending="$KEEL_STATE/pending-handlers"
keel_notify() { for keel_h in "$@"; do grep -qxF -- "$keel_h" "$keel_pending" 2>/dev/null || printf '%s\\n' "$keel_h" >> "$keel_pending"; done; }
keel_forget() { grep -vxF -- "$1" "$keel_pending" > "$keel_pending.tmp" 2>/dev/null; mv -f -- "$keel_pending.tmp" "$keel_pending"; }
keel_fail() { printf '%s F %s %s ' ${N} "$1" "$2"; tail -c 4000 -- "$KEEL_RUN_DIR/out" | base64 | tr -d '\\n'; printf '\\n'; }
`;
  for (const id of opts.forget) s += sh`keel_forget ${id}\n`;
  for (const step of opts.steps) {
    s += `printf '%s B %s\\n' ${N} ${step.key}\n`;
    s += `(\nset -e\n${step.commands.join('\n')}\n) >"$KEEL_RUN_DIR/out" 2>&1 </dev/null\n`;
    s += `keel_rc=$?\nif [ "$keel_rc" -ne 0 ]; then keel_fail ${step.key} "$keel_rc"; return 0; fi\n`;
    if (step.notify.length) s += sh`keel_notify ${step.notify}\n`;
    s += `printf '%s C %s\\n' ${N} ${step.key}\n`;
  }
  for (const h of opts.handlers) {
    s += sh`if grep -qxF -- ${h.id} "$keel_pending" 2>/dev/null; then\n`;
    s += `printf '%s B %s\\n' ${N} ${h.key}\n`;
    s += `(\nset -e\n${h.run}\n) >"$KEEL_RUN_DIR/out" 2>&1 </dev/null\n`;
    // A failed handler stays pending; the run goes on to verify, so a further pass can fix
    // what made it fail (and run it again).
    s += `keel_rc=$?\nif [ "$keel_rc" -ne 0 ]; then keel_fail ${h.key} "$keel_rc"; else\n`;
    s += sh`keel_forget ${h.id}\n`;
    s += `printf '%s C %s\\n' ${N} ${h.key}\nfi\nfi\n`;
  }
  s += `printf '\\n%s V\\n' ${N}\n`;
  s += probeBody(opts.verify, opts.nonce, opts.ctx);
  return wrap(s);
}

export interface ProbeResult {
  facts: Map<number, Facts>;
  pendingHandlers: string[];
  complete: boolean;
}

/** Parse the probe sections of `output` (the part after `@@nonce V` for an apply). */
export function parseProbe(output: string, nonce: string, resources: PlannedResource[]): ProbeResult {
  const facts = new Map<number, Facts>();
  const byType = groupByType(resources);
  const sections = splitSections(output, nonce);
  for (const [type, items] of byType) {
    const text = sections.get(`S ${type.name}`) ?? '';
    const probeItems = items.map((r) => ({ key: String(r.index), params: r.params }));
    const parsed = type.parse ? type.parse(text, probeItems) : parseFacts(text);
    for (const r of items) facts.set(r.index, parsed.get(String(r.index)) ?? {});
  }
  const pending = (sections.get('P') ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  return { facts, pendingHandlers: [...new Set(pending)], complete: sections.has('E') };
}

export interface StepOutcome {
  key: string;
  status: 'changed' | 'failed';
  code?: number;
  output?: string;
}

export interface ApplyResult {
  steps: StepOutcome[];
  /** Output of the verification probe, if the script got that far. */
  verifyOutput?: string;
  /** The step that had begun when output stopped (connection lost mid-step). */
  interruptedKey?: string;
}

export function parseApply(output: string, nonce: string): ApplyResult {
  const steps: StepOutcome[] = [];
  let begun: string | undefined;
  const vMarker = `\n${nonce} V\n`;
  const vAt = output.indexOf(vMarker);
  const head = vAt >= 0 ? output.slice(0, vAt) : output;
  for (const line of head.split('\n')) {
    if (!line.startsWith(nonce + ' ')) continue;
    const [, tag, key, code, b64] = line.split(' ');
    if (tag === 'B') begun = key;
    else if (tag === 'C' && key) {
      steps.push({ key, status: 'changed' });
      begun = undefined;
    } else if (tag === 'F' && key) {
      steps.push({ key, status: 'failed', code: Number(code), output: Buffer.from(b64 ?? '', 'base64').toString('utf8') });
      begun = undefined;
    }
  }
  return { steps, verifyOutput: vAt >= 0 ? output.slice(vAt + 1) : undefined, interruptedKey: begun };
}

function splitSections(output: string, nonce: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = ('\n' + output).split(`\n${nonce} `);
  for (const part of parts.slice(1)) {
    const nl = part.indexOf('\n');
    const name = nl < 0 ? part : part.slice(0, nl);
    out.set(name.trim(), nl < 0 ? '' : part.slice(nl + 1));
  }
  return out;
}

function groupByType(resources: PlannedResource[]): Map<ResourceType<unknown>, PlannedResource[]> {
  const m = new Map<ResourceType<unknown>, PlannedResource[]>();
  for (const r of resources) {
    if (r.skipped) continue;
    const list = m.get(r.type) ?? [];
    list.push(r);
    m.set(r.type, list);
  }
  return m;
}
