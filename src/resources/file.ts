// file: a regular file with content, owner, group and mode. Written atomically: a temp file in
// the same directory gets the content, owner and mode, is validated and fsynced, then renamed
// over the old one, so a reader (or a dropped connection) sees the old file or the new one.
import { createHash } from 'node:crypto';
import { joinShell, raw, sh, type Shell } from '../shell/quote.js';
import { change, ok, type ContentDiff, type Decision, type Facts, type ResourceType } from './types.js';
import { dirname, normalizeMode, requireAbsolute, requireDirectory, sameMode, sameOwner } from './paths.js';
import { unique } from '../lists.js';
import { ownerSpec, parseStat, statProbe, withNames } from './stat.js';
import { ConfigError } from '../errors.js';

export interface FileParams {
  path: string;
  state?: 'present' | 'absent';
  /** Desired content. Absent: content is not managed (the file is created empty if missing). */
  content?: string;
  owner?: string | number;
  group?: string | number;
  mode?: string;
  /** Command validating the new file before it replaces the old one. `%s` is the temp file;
   *  without `%s` the command runs after the rename and a failure puts the old file back. */
  validate?: string;
  /** Never show this file's content in diffs (secrets are masked anyway). */
  sensitive?: boolean;
}

const DIFF_LIMIT = 256 * 1024;

export const fileType: ResourceType<FileParams> = {
  name: 'file',
  doc: {
    summary:
      'A regular file: content, owner, group, mode; written atomically (temp file, validate, fsync, rename). ' +
      "`source:` reads the content from the role's `files/`.",
    example:
      '- file: {path: /etc/app/settings.ini, content: "debug = false\\n", owner: root, group: app, mode: "0640"}\n' +
      '- file: {path: /etc/app/logo.png, source: logo.png}   # roles/<role>/files/logo.png',
  },
  schema: {
    type: 'object',
    required: ['path'],
    additionalProperties: false,
    properties: {
      path: { description: 'absolute path of the file', type: 'string', minLength: 1 },
      state: { description: 'present (default) or absent', type: 'string', enum: ['present', 'absent'] },
      content: { description: 'the wanted content; without it the file is only created (empty) and its attributes managed', type: 'string' },
      owner: { description: 'user name or uid', type: ['string', 'integer'] },
      group: { description: 'group name or gid', type: ['string', 'integer'] },
      mode: { description: 'octal mode, e.g. "0640"', type: ['string', 'integer'] },
      validate: {
        description:
          'a command checking the new file before it replaces the old one: `%s` is the temp file (`nginx -t -c %s`); ' +
          'without `%s` it runs after the rename and a failure puts the old file back',
        type: 'string',
      },
      sensitive: { description: "never show this file's content in diffs (vault values are masked anyway)", type: 'boolean' },
    },
  },

  identity: (p) => p.path,

  normalize(p) {
    return { ...p, path: requireAbsolute(p.path, 'file path'), mode: normalizeMode(p.mode) };
  },

  probe(items, ctx) {
    const paths = unique(items.map((i) => i.params.path));
    const hashed = unique(items.filter((i) => i.params.content !== undefined).map((i) => i.params.path));
    // Usually every file has content: the paths are then written once, as the positional
    // parameters both stat and sha256sum take.
    const once = hashed.length === paths.length;
    const hashArgs = once ? raw('"$@"') : sh`${hashed}`;
    const s: Shell[] = [
      ...(once ? [sh`set -- ${paths}\n`] : []),
      statProbe(
        paths,
        items.map((i) => i.params),
        once ? hashArgs : undefined,
      ),
    ];
    if (!ctx.wantDiff || !hashed.length) {
      if (hashed.length) s.push(sh`echo --sha; sha256sum -- ${hashArgs} 2>/dev/null\n`);
      return joinShell(s, '');
    }
    // Old contents travel only for files whose hash differs from the wanted one. The hashes
    // above are kept in keel_sums: a file whose line there is the wanted hash costs no process;
    // any other (a name sha256sum escapes, a changed file) is looked at again on its own.
    s.push(sh`echo --sha; keel_sums=$(sha256sum -- ${hashArgs} 2>/dev/null); printf '%s\n' "$keel_sums"\n`);
    s.push(raw("echo --diff\nkeel_nl='\n'\n"));
    for (const i of items) {
      if (i.params.content === undefined || i.params.sensitive) continue;
      const want = contentSha256(i.params as { content: string });
      const path = i.params.path;
      const small = sh`[ -f ${path} ] && [ "$(wc -c < ${path})" -le ${DIFF_LIMIT} ]`;
      const show = sh`printf '%s\\t' ${path}; base64 -w0 < ${path}; echo`;
      const again = sh`if ${small}; then case "$(sha256sum < ${path})" in ${want}*) ;; *) ${show};; esac; fi`;
      s.push(sh`case "$keel_nl$keel_sums$keel_nl" in *"$keel_nl"${`${want}  ${path}`}"$keel_nl"*) ;; *) ${again};; esac\n`);
    }
    return joinShell(s, '');
  },

  parse(output, items) {
    // statProbe's part (stat, then the owners' ids), then the hashes and the old contents.
    const cut = output.search(/^--(sha|diff)$/m);
    const { byPath, ids } = parseStat(cut < 0 ? output : output.slice(0, cut));
    let section = 'sha';
    for (const line of cut < 0 ? [] : output.slice(cut).split('\n')) {
      if (line === '--sha' || line === '--diff') {
        section = line.slice(2);
        continue;
      }
      if (!line) continue;
      if (section === 'sha') {
        const m = parseShaLine(line);
        if (m) (byPath.get(m.path) ?? setDefault(byPath, m.path)).sha256 = m.sha;
      } else {
        const t = line.indexOf('\t');
        if (t > 0) (byPath.get(line.slice(0, t)) ?? setDefault(byPath, line.slice(0, t))).old = line.slice(t + 1);
      }
    }
    return new Map(items.map((i) => [i.key, withNames(byPath.get(i.params.path), i.params, ids)]));
  },

  decide(p, f, ctx): Decision {
    const exists = f.type !== undefined && f.type !== '';
    if (p.state === 'absent') {
      if (!exists) return ok(`${p.path} is absent`);
      if (f.type === 'directory') throw new ConfigError(`file ${p.path}: state absent, but it is a directory (use the directory resource)`);
      return change(`remove ${p.path}`, [sh`rm -f -- ${p.path}`], {
        diff: ctx.wantDiff ? { path: p.path, before: decodeOld(f), after: null, sensitive: p.sensitive } : undefined,
      });
    }
    if (exists && f.type !== 'regular file' && f.type !== 'regular empty file') {
      if (f.type === 'directory') throw new ConfigError(`file ${p.path}: a directory is in the way`);
    }
    const reasons: string[] = [];
    const contentDiffers = p.content !== undefined && (!exists || f.sha256 !== contentSha256(p as { content: string }) || f.type === 'symbolic link');
    if (!exists) reasons.push('create');
    else if (contentDiffers) reasons.push('content');
    if (exists && p.owner !== undefined && !sameOwner(f.user, f.uid, p.owner)) reasons.push(`owner ${f.user || `uid ${f.uid}`} -> ${p.owner}`);
    if (exists && p.group !== undefined && !sameOwner(f.group, f.gid, p.group)) reasons.push(`group ${f.group || `gid ${f.gid}`} -> ${p.group}`);
    if (exists && p.mode !== undefined && !sameMode(f.mode, p.mode)) reasons.push(`mode ${f.mode} -> ${p.mode.replace(/^0/, '')}`);
    if (!reasons.length) return ok(`${p.path} ${p.content !== undefined ? 'has the wanted content' : 'exists'}${attrs(p)}`);

    const diff: ContentDiff | undefined =
      ctx.wantDiff && (contentDiffers || !exists)
        ? { path: p.path, before: exists ? decodeOld(f) : null, after: p.content ?? '', sensitive: p.sensitive }
        : undefined;
    if (exists && !contentDiffers) {
      // Only attributes differ: fix them in place, no rewrite.
      const cmds: Shell[] = [];
      if (p.owner !== undefined || p.group !== undefined) cmds.push(sh`chown ${ownerSpec(p)} -- ${p.path}`);
      if (p.mode !== undefined) cmds.push(sh`chmod ${p.mode} -- ${p.path}`);
      return change(`${p.path}: ${reasons.join(', ')}`, cmds);
    }
    return change(`${p.path}: ${reasons.join(', ')}`, writeCommands(p, exists), { diff });
  },
};

/** Shell that writes `content` atomically to `path`; exported for the template type. */
export function writeCommands(p: FileParams, exists: boolean): Shell[] {
  const dir = dirname(p.path);
  const cmds: Shell[] = [
    requireDirectory(dir, p.path, 'file'),
    sh`keel_tmp=$(mktemp -- ${dir + '/.keel-tmp.XXXXXX'})`,
    raw(`trap 'rm -f -- "$keel_tmp"' EXIT`),
  ];
  const body = Buffer.from(p.content ?? '', 'utf8')
    .toString('base64')
    .replace(/(.{76})/g, '$1\n');
  // A quoted here-document: the content travels inside the script on stdin, never in argv.
  cmds.push(raw(`base64 -d > "$keel_tmp" <<'KEEL_EOF'\n${body}\nKEEL_EOF`));
  if (exists) cmds.push(sh`chown --reference=${p.path} -- "$keel_tmp"`, sh`chmod --reference=${p.path} -- "$keel_tmp"`);
  else cmds.push(raw(`chmod 0644 -- "$keel_tmp"`));
  if (p.owner !== undefined || p.group !== undefined) cmds.push(sh`chown ${ownerSpec(p)} -- "$keel_tmp"`);
  if (p.mode !== undefined) cmds.push(sh`chmod ${p.mode} -- "$keel_tmp"`);
  const validateBefore = p.validate?.includes('%s');
  // The role author's validate command, as written (a shell field: compile refuses a bare
  // {{var}} in it); %s becomes the temp file.
  if (p.validate && validateBefore) cmds.push(raw(p.validate.split('%s').join('"$keel_tmp"')));
  cmds.push(raw(`sync -- "$keel_tmp"`));
  if (p.validate && !validateBefore) {
    // Validate in place; put the old file back (or remove the new one) if it fails.
    const restore = sh`if [ -n "$keel_bak" ]; then mv -f -- "$keel_bak" ${p.path}; else rm -f -- ${p.path}; fi`;
    const fail = sh`echo ${'validation failed: ' + p.validate + ' (the previous file was kept)'} >&2; exit 1`;
    cmds.push(
      exists ? sh`keel_bak=${dir + '/.keel-bak.'}$$; ln -f -- ${p.path} "$keel_bak"` : raw('keel_bak='),
      sh`mv -f -- "$keel_tmp" ${p.path}`,
      sh`if ! { ${raw(p.validate)} ; } >&2; then ${restore}; ${fail}; fi`,
      raw('[ -z "$keel_bak" ] || rm -f -- "$keel_bak"'),
    );
  } else {
    cmds.push(sh`mv -f -- "$keel_tmp" ${p.path}`);
  }
  return cmds;
}

function attrs(p: FileParams): string {
  const a = [p.owner !== undefined && `owner ${p.owner}`, p.group !== undefined && `group ${p.group}`, p.mode && `mode ${p.mode}`].filter(Boolean);
  return a.length ? ` (${a.join(', ')})` : '';
}

function decodeOld(f: Facts): string | null {
  return f.old !== undefined ? Buffer.from(f.old, 'base64').toString('utf8') : null;
}

/** One `sha256sum` line. A name with a backslash (or newline) is escaped by sha256sum, which
 *  then starts the line with `\`: without undoing that such a file never matched. */
export function parseShaLine(line: string): { sha: string; path: string } | undefined {
  const m = /^(\\?)([0-9a-f]{64}) [ *](.*)$/.exec(line);
  if (!m) return undefined;
  const path = m[1] ? m[3]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c)) : m[3]!;
  return { sha: m[2]!, path };
}

export function sha256(content: string): string {
  return createHash('sha256').update(content, 'utf8').digest('hex');
}

/** sha256 of a file resource's content, once per params object: hosts that share a compiled
 *  section (compile-reuse.ts) share its params, and a probe with --diff asks twice. */
function contentSha256(p: { content: string }): string {
  const known = sums.get(p);
  if (known && known.content === p.content) return known.sum;
  const sum = sha256(p.content);
  sums.set(p, { content: p.content, sum });
  return sum;
}

const sums = new WeakMap<object, { content: string; sum: string }>();

function setDefault(m: Map<string, Facts>, k: string): Facts {
  const f: Facts = {};
  m.set(k, f);
  return f;
}
