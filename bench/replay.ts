// What a fake endpoint (bench/fake-endpoint.ts) answers: it reads the bytes keel writes to its
// one remote `sh -s` per host (src/ssh/remote-shell.ts), cuts them into framed scripts, and
// answers each the way a converged host does, from a recording of a real host's probe output:
//
//   frame:   `(\ntrap - PIPE\n<script>)</dev/null\n` + `printf '\n%s X %s\n' '<frame nonce>' "$?"; printf '\n%s X\n' '<frame nonce>' >&2\n`
//   answer:  stdout = the recorded probe output with the recorded script nonce replaced by this
//            script's own `@@keel-<12 hex>` nonce, then `\n<frame nonce> X <status>\n`;
//            stderr = the recorded stderr, then `\n<frame nonce> X\n`.
//
// Pure functions, no I/O: unit-tested in test/unit/bench-replay.test.ts.

/** A real host's answer to the run's first script (lock + probe), as recorded by bench/record.ts. */
export interface ProbeRecording {
  /** The nonce the recorded script used (in its protocol lines). */
  nonce: string;
  stdout: string;
  stderr: string;
  code: number;
  /** Resources in the role the probe covered. */
  resources: number;
  /** Median wall time of that script on the real host (ms), measured there with `date +%s%N`. */
  hostMs: number;
  /** Where and when it was recorded. */
  source: string;
}

export type ScriptKind = 'probe' | 'release' | 'unknown';

export interface Framed {
  /** The frame's nonce (from the trailing printf lines). */
  frameNonce: string;
  /** The script inside the subshell. */
  script: string;
  kind: ScriptKind;
  /** The script's own nonce (protocol lines), if it has one. */
  scriptNonce?: string;
}

const NONCE = /@@keel-[0-9a-f]{12}/g;
const FRAME_END = /\nprintf '\\n%s X %s\\n' '(@@keel-[0-9a-f]{12})' "\$\?"; printf '\\n%s X\\n' '\1' >&2\n/;
const FRAME_START = '(\ntrap - PIPE\n';
const FRAME_BODY_END = ')</dev/null';

/**
 * Take every complete frame out of `buf` (the bytes received so far). Returns the frames and
 * what is left over (an incomplete frame). The bootstrap line sent before the first frame, and
 * anything else outside a frame, is dropped.
 */
export function takeFrames(buf: string): { frames: Framed[]; rest: string } {
  const frames: Framed[] = [];
  let rest = buf;
  for (;;) {
    const m = FRAME_END.exec(rest);
    if (!m) break;
    const chunk = rest.slice(0, m.index);
    rest = rest.slice(m.index + m[0].length);
    const start = chunk.indexOf(FRAME_START);
    const end = chunk.lastIndexOf(FRAME_BODY_END);
    const script = start >= 0 && end > start ? chunk.slice(start + FRAME_START.length, end) : chunk;
    frames.push(classify(m[1]!, script));
  }
  return { frames, rest };
}

/** Which of a no-op run's scripts this is: the lock + probe script, or the lock release. */
export function classify(frameNonce: string, script: string): Framed {
  const nonces = [...new Set(script.match(NONCE) ?? [])].filter((n) => n !== frameNonce);
  const scriptNonce = nonces[0];
  // acquireSnippet (src/engine/lock.ts) prints `<nonce> L acquired`; the probe prints `<nonce> E`.
  if (scriptNonce && script.includes(' L acquired') && script.includes(' E\\n')) return { frameNonce, script, kind: 'probe', scriptNonce };
  // releaseScript: removes the lock if this run's id is in its owner file; no nonce of its own.
  if (script.includes('keel_lock="$KEEL_STATE/lock"') && script.includes('grep -qxF') && script.includes('rm -rf -- "$keel_lock"') && !script.includes(' L ')) {
    return { frameNonce, script, kind: 'release' };
  }
  return { frameNonce, script, kind: 'unknown', ...(scriptNonce ? { scriptNonce } : {}) };
}

export interface Answer {
  stdout: string;
  stderr: string;
  code: number;
}

/** What a converged host answers to `f`. An unexpected script (an apply: the recording is not
 *  of a converged host, or the role differs) fails with status 125 and says why. */
export function answer(f: Framed, rec: ProbeRecording): Answer {
  switch (f.kind) {
    case 'probe':
      return { stdout: rec.stdout.split(rec.nonce).join(f.scriptNonce!), stderr: rec.stderr.split(rec.nonce).join(f.scriptNonce!), code: rec.code };
    case 'release':
      return { stdout: '', stderr: '', code: 0 };
    default:
      return {
        stdout: '',
        stderr: `keel-bench fake endpoint: not a converged host's script (${f.script.length} bytes); only the lock + probe and the release are answered\n`,
        code: 125,
      };
  }
}

/** The bytes for stdout and stderr that end the frame, as the real frame's printf lines would. */
export function framedAnswer(f: Framed, a: Answer): { stdout: string; stderr: string } {
  return { stdout: `${a.stdout}\n${f.frameNonce} X ${a.code}\n`, stderr: `${a.stderr}\n${f.frameNonce} X\n` };
}
