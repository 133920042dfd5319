// line: one line in a text file (Ansible's lineinfile). The controller never has the file, so
// both the check and the edit run on the host in awk:
//  - probe: ONE awk for every file and item, counts exact copies of the line, lines matching
//    regexp, and whether the last match already is the line;
//  - apply: awk writes the new content to a temp file beside the real one (through a symlink:
//    the link's target is edited), owner and mode are copied with --reference, then mv.
// Values reach awk through its environment (ENVIRON), never through `-v` (which would
// interpret backslashes in the regexp) nor the program text. `regexp` is a POSIX ERE as the
// host's awk reads it (mawk on Debian/Ubuntu: no {n,m} intervals on older releases).
// Semantics follow lineinfile: present + regexp replaces the LAST matching line, or appends the
// line when nothing matches and the exact line is not already there; absent removes every
// matching line (every exact copy without regexp).
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import { ConfigError } from '../errors.js';
import { change, ok, parseFacts, type Decision, type ResourceType } from './types.js';
import { requireAbsolute, requireDirectory } from './paths.js';

export interface LineParams {
  path: string;
  line?: string;
  regexp?: string;
  state?: 'present' | 'absent';
  /** Create the file (mode 0644) when it does not exist (default false). */
  create?: boolean;
}

// (Long lines of the awk program are split across JS strings: the program is unchanged.)
// The probe, for every file at once, each read with getline: KEEL_FN files, file f at
// KEEL_P<f> (read only when KEEL_E<f> is 1: a regular file), its items as KEEL_K<f>_<i>
// (the key), KEEL_L (the line), KEEL_R (the regexp) and KEEL_H (1 when there is a regexp).
// KEEL_ONLY=<f>: file f alone.
const PROBE_AWK =
  `BEGIN { fn = ENVIRON["KEEL_FN"] + 0; only = ENVIRON["KEEL_ONLY"] + 0
  for (f = 1; f <= fn; f++) { if ((only && f != only) || ENVIRON["KEEL_E" f] != "1") continue
    path = ENVIRON["KEEL_P" f]; n = ENVIRON["KEEL_N" f] + 0
    for (i = 1; i <= n; i++) { p = f "_" i; k[i] = ENVIRON["KEEL_K" p]; l[i] = ENVIRON["KEEL_L" p] ""; r[i] = ENVIRON["KEEL_R" p]; ` +
  `h[i] = (ENVIRON["KEEL_H" p] == "1"); ex[i] = 0; m[i] = 0; last[i] = 0 }
    while ((got = (getline line < path)) > 0) { for (i = 1; i <= n; i++) { if (line == l[i]) ex[i]++; ` +
  `if (h[i] && line ~ r[i]) { m[i]++; last[i] = (line == l[i]) } } }
    close(path); if (got < 0) continue
    for (i = 1; i <= n; i++) printf "%s\\texists\\t1\\n%s\\texact\\t%d\\n%s\\tmatches\\t%d\\n%s\\tlast\\t%d\\n", ` +
  `k[i], k[i], ex[i], k[i], m[i], k[i], last[i] } }`;

// `l ""` forces string comparison: awk compares two numeric-looking strings as numbers.
const PRESENT_AWK = `BEGIN { l = ENVIRON["KEEL_LINE"] ""; r = ENVIRON["KEEL_RE"]; h = (ENVIRON["KEEL_HASRE"] == "1") }
{ a[NR] = $0; if (h && $0 ~ r) lm = NR; if ($0 == l) ex = 1 }
END { if (lm) a[lm] = l; for (i = 1; i <= NR; i++) print a[i]; if (!lm && !ex) print l }`;

const ABSENT_AWK = `BEGIN { l = ENVIRON["KEEL_LINE"] ""; r = ENVIRON["KEEL_RE"]; h = (ENVIRON["KEEL_HASRE"] == "1") }
{ if (h ? ($0 ~ r) : ($0 == l)) next; print }`;

export const lineType: ResourceType<LineParams> = {
  name: 'line',
  doc: {
    summary: 'One line in a file: added, replaced (the last line matching `regexp`), or removed.',
    example: '- line: {path: /etc/nginx/nginx.conf, regexp: "^[[:space:]]*#?[[:space:]]*server_tokens ", line: "\\tserver_tokens off;"}',
  },
  schema: {
    type: 'object',
    required: ['path'],
    additionalProperties: false,
    properties: {
      path: { description: 'absolute path of the file', type: 'string', minLength: 1 },
      line: { description: 'the wanted line (required when present)', type: 'string' },
      regexp: {
        description: 'a POSIX extended regular expression: the last matching line is replaced (or removed with state absent)',
        type: 'string',
        minLength: 1,
      },
      state: { description: 'present (default) or absent', type: 'string', enum: ['present', 'absent'] },
      create: { description: 'create the file if it does not exist', type: 'boolean' },
    },
  },

  identity: (p) => `${p.path}: ${p.regexp ?? p.line ?? ''}`,

  normalize(p) {
    const path = requireAbsolute(p.path, 'line path');
    const state = p.state ?? 'present';
    if (state === 'present' && p.line === undefined) throw new ConfigError(`line in ${path}: line is required with state present`);
    if (state === 'absent' && p.line === undefined && p.regexp === undefined) throw new ConfigError(`line in ${path}: give line or regexp to remove`);
    if (p.line?.includes('\n')) throw new ConfigError(`line in ${path}: line cannot contain a newline (one resource per line)`);
    if (p.regexp?.includes('\n')) throw new ConfigError(`line in ${path}: regexp cannot contain a newline`);
    return { ...p, path, state, regexp: p.regexp === undefined ? undefined : toPosixEre(p.regexp) };
  },

  probe(items) {
    const byFile = new Map<string, typeof items>();
    for (const i of items) byFile.set(i.params.path, [...(byFile.get(i.params.path) ?? []), i]);
    const files = [...byFile].map(([path, list], f) => ({ path, list, nth: String(f + 1) }));
    /** File `nth`'s part of the environment; `exists`: 1 when it is a regular file. */
    const fileEnv = ({ path, list }: (typeof files)[number], nth: string, exists: Shell) => [
      sh`KEEL_P${raw(nth)}=${path} KEEL_E${raw(nth)}=${exists} KEEL_N${raw(nth)}=${list.length}`,
      ...list.map((it, n) => {
        const p = it.params;
        const k = raw(`${nth}_${n + 1}`);
        return sh`KEEL_K${k}=${it.key} KEEL_L${k}=${p.line ?? ''} KEEL_R${k}=${p.regexp ?? ''} KEEL_H${k}=${p.regexp !== undefined ? '1' : '0'}`;
      }),
    ];
    const awk = (n: number, env: Shell[]) => sh`KEEL_FN=${n} ${joinShell(env, ' ')} awk ${PROBE_AWK} 2>/dev/null`;
    if (files.length < 2) {
      const alone = files.map((f) => sh`if [ -f ${f.path} ]; then ${awk(1, fileEnv(f, '1', raw('1')))}; fi\n`);
      return joinShell(alone, '');
    }
    // Several files: one awk reads them all (a process each cost about 1.5 ms on the host).
    // It prints nothing unless it ends well; if it fails (a regexp this awk cannot compile),
    // each file gets its own awk (KEEL_ONLY), so one bad item does not hide the others' facts.
    // The program and the values are written once, in keel_lines, whichever way it runs.
    const exists = files.map(({ path, nth }) => sh`if [ -f ${path} ]; then keel_le${raw(nth)}=1; else keel_le${raw(nth)}=0; fi\n`);
    const env = files.flatMap((f) => fileEnv(f, f.nth, raw(`"$keel_le${f.nth}"`)));
    const each = files.map((f) => f.nth).join(' ');
    return joinShell(
      [
        ...exists,
        sh`keel_lines() { KEEL_ONLY=$1 ${awk(files.length, env)}; }\n`,
        raw(`if keel_lo=$(keel_lines 0); then\n[ -z "$keel_lo" ] || printf '%s\\n' "$keel_lo"\n`),
        raw(`else for keel_lf in ${each}; do keel_lines "$keel_lf"; done; fi\n`),
      ],
      '',
    );
  },

  parse(output, items) {
    const facts = parseFacts(output);
    return new Map(items.map((i) => [i.key, facts.get(i.key) ?? {}]));
  },

  decide(p, f): Decision {
    const exists = f.exists === '1';
    const exact = Number(f.exact ?? 0);
    const matches = Number(f.matches ?? 0);
    const what = p.regexp !== undefined ? `/${p.regexp}/` : JSON.stringify(p.line);
    if (p.state === 'absent') {
      if (!exists) return ok(`${p.path} does not exist`);
      const n = p.regexp !== undefined ? matches : exact;
      if (n === 0) return ok(`no line ${what} in ${p.path}`);
      return change(`${p.path}: remove ${n} line(s) ${what}`, editCommands(p, ABSENT_AWK));
    }
    if (!exists) {
      const reason = p.create ? `create ${p.path} with the line` : `${p.path} does not exist (create: false)`;
      return change(reason, editCommands(p, PRESENT_AWK));
    }
    if (p.regexp !== undefined && matches > 0) {
      if (f.last === '1') return ok(`${p.path}: the last line matching ${what} is the wanted line`);
      return change(`${p.path}: replace the last line matching ${what}`, editCommands(p, PRESENT_AWK));
    }
    if (exact > 0) return ok(`${p.path} has the line ${JSON.stringify(p.line)}`);
    return change(`${p.path}: append ${JSON.stringify(p.line)}`, editCommands(p, PRESENT_AWK));
  },
};

function editCommands(p: LineParams, program: string): Shell[] {
  const present = p.state !== 'absent';
  // The file is missing (at the probe, or it vanished since): create it in its directory,
  // which must exist; fail saying how to create it; or, to remove a line, nothing to do.
  const missing =
    present && p.create
      ? sh`${requireDirectory(raw('"$keel_dir"'), raw('"$keel_dst"'), 'file')}; keel_src=/dev/null`
      : present
        ? sh`printf '%s\\n' ${p.path + ' does not exist (set create: true to create it)'} >&2; exit 1`
        : raw('keel_src=');
  const copyOwnerAndMode = sh`chown --reference="$keel_dst" -- "$keel_tmp"; chmod --reference="$keel_dst" -- "$keel_tmp"`;
  const awkEnv = sh`KEEL_LINE=${p.line ?? ''} KEEL_RE=${p.regexp ?? ''} KEEL_HASRE=${p.regexp !== undefined ? '1' : '0'}`;
  return [
    // Edit the target of a symlink, not the link (e.g. /etc/resolv.conf). -m: resolve it even
    // when its directory is missing, so that case gets its own message below.
    sh`keel_dst=$(readlink -m -- ${p.path})`,
    raw('keel_dir=$(dirname -- "$keel_dst")'),
    sh`if [ -e "$keel_dst" ]; then keel_src=$keel_dst; else ${missing}; fi`,
    sh`if [ -n "$keel_src" ]; then
keel_tmp=$(mktemp -- "$keel_dir/.keel-tmp.XXXXXX")
trap 'rm -f -- "$keel_tmp"' EXIT
if [ "$keel_src" = "$keel_dst" ]; then ${copyOwnerAndMode}; else chmod 0644 -- "$keel_tmp"; fi
${awkEnv} awk ${program} "$keel_src" > "$keel_tmp"; sync -- "$keel_tmp"; mv -f -- "$keel_tmp" "$keel_dst"
fi`,
  ];
}

/**
 * Regexps run in the host's awk, which is mawk on Debian and Ubuntu: POSIX extended regular
 * expressions, where `\s` or `\d` silently match the letter. Translate the common Perl
 * shorthands so a regexp means what its author meant (outside bracket expressions).
 */
export function toPosixEre(re: string): string {
  const classes: Record<string, string> = { s: '[[:space:]]', S: '[^[:space:]]', d: '[0-9]', D: '[^0-9]', w: '[[:alnum:]_]', W: '[^[:alnum:]_]' };
  let out = '';
  let inBracket = false;
  for (let i = 0; i < re.length; i++) {
    const c = re[i]!;
    if (c === '\\' && i + 1 < re.length) {
      const n = re[i + 1]!;
      if (!inBracket && classes[n]) out += classes[n];
      else out += c + n;
      i++;
      continue;
    }
    if (c === '[' && !inBracket) inBracket = true;
    else if (c === ']' && inBracket && out[out.length - 1] !== '[') inBracket = false;
    out += c;
  }
  return out;
}
