// The script keel logs runs on a host (staged, on a channel of its own). It prints, each line
// after the nonce:
//   Z <+hhmm>                          the host's UTC offset (its logs are in local time)
//   H <yyyymmddhhmmss>\t<source>\t<line>   the logs so far, each line with its time
//   L                                  the end of them
//   F <source>\t<line>                 with --follow: new lines as they come, until stdin ends
//
// A line's time is read from the line: ISO-like (gunicorn, nginx's error.log, the journal's
// short-iso, Python's logging), the common log format (access logs), or a bare HH:MM:SS at the
// start (rq) on the file's day. A line without one (a traceback) takes the time of the line
// before it (lines before the first timed one, that one's); a file without any, its
// modification time. `--since` keeps lines
// at or after it; `--grep` (an extended regular expression, awk's) keeps those that match.
//
// Following starts where reading stopped, byte for byte (tail -c +N) and entry for entry (the
// journal's cursor): no line is lost or shown twice between the two.
import { raw, sh, type Shell } from '../shell/quote.js';
import type { LogSelection } from './log-sources.js';

export interface LogQuery {
  /** Lines per source (the newest); undefined: all (with since) or the default. */
  lines?: number;
  /** Seconds since the epoch. */
  since?: number;
  grep?: string;
  follow: boolean;
}

const AWK = String.raw`BEGIN {
  split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mn, " ")
  for (i = 1; i <= 12; i++) mon[mn[i]] = sprintf("%02d", i)
  n = ENVIRON["KEEL_N"]; src = ENVIRON["KEEL_SRC"]; since = ENVIRON["KEEL_SINCE"]; re = ENVIRON["KEEL_GREP"]
  day = ENVIRON["KEEL_DAY"]; follow = (ENVIRON["KEEL_MODE"] == "F"); last = ""; held = 0
}
function stamp(s,   h, t) {
  h = substr(s, 1, 64)
  if (match(h, /[0-9][0-9][0-9][0-9][-\/][0-9][0-9][-\/][0-9][0-9][T ][0-9][0-9]:[0-9][0-9]:[0-9][0-9]/)) {
    t = substr(h, RSTART, 19)
    return substr(t, 1, 4) substr(t, 6, 2) substr(t, 9, 2) substr(t, 12, 2) substr(t, 15, 2) substr(t, 18, 2)
  }
  if (match(h, /[0-9][0-9]\/[A-Z][a-z][a-z]\/[0-9][0-9][0-9][0-9]:[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/)) {
    t = substr(h, RSTART, 20)
    if (substr(t, 4, 3) in mon) return substr(t, 8, 4) mon[substr(t, 4, 3)] substr(t, 1, 2) substr(t, 13, 2) substr(t, 16, 2) substr(t, 19, 2)
  }
  if (day != "" && match(h, /^\[?[0-9][0-9]:[0-9][0-9]:[0-9][0-9]([ ,.\]]|$)/)) {
    t = substr(h, RSTART + (substr(h, 1, 1) == "["), 8)
    return day substr(t, 1, 2) substr(t, 4, 2) substr(t, 7, 2)
  }
  return ""
}
function emit(t, line) {
  if (since != "" && t < since) return
  if (re != "" && line !~ re) return
  printf "%s H %s\t%s\t%s\n", n, t, src, line
}
follow {
  if (re == "" || $0 ~ re) { printf "%s F %s\t%s\n", n, src, $0; fflush() }
  next
}
{
  t = stamp($0)
  if (t != "") {
    for (i = 0; i < held; i++) emit(t, buf[i])
    held = 0; last = t; emit(t, $0); next
  }
  if (last != "") { emit(last, $0); next }
  if (held < 10000) buf[held++] = $0
}
END { for (i = 0; i < held; i++) emit(ENVIRON["KEEL_MTIME"], buf[i]) }
`;

/** The script for one host: `logs` is app_root/logs. */
export function logsScript(logs: string, sel: LogSelection, q: LogQuery, nonce: string): Shell {
  const N = sh`${nonce}`;
  // Newest lines first cut by tail where nothing filters (cheap on a big file), else after.
  const filtered = q.since !== undefined || !!q.grep;
  const before = q.lines !== undefined && !filtered ? sh` | tail -n ${q.lines}` : raw('');
  const after = q.lines !== undefined && filtered ? sh` | tail -n ${q.lines}` : raw('');
  const dirs = sel.dirs.includes('*') ? [raw(`${sh`${logs}`.text}/*/`)] : sel.dirs.map((d) => sh`${`${logs}/${d}/`}`);
  const journal = sel.units.flatMap((u) => ['-u', u]);
  const journalLines = q.lines !== undefined && !q.grep ? sh` -n ${q.lines}` : raw('');
  const journalSince = q.since !== undefined ? sh` --since ${`@${Math.floor(q.since)}`}` : raw('');
  return sh`export LC_ALL=C
printf '%s Z %s\\n' ${N} "$(date +%z)"
keel_awk=${AWK}
KEEL_N=${nonce}; KEEL_GREP=${q.grep ?? ''}; KEEL_SINCE=${q.since !== undefined ? raw(`$(date -d @${Math.floor(q.since)} +%Y%m%d%H%M%S)`) : raw("''")}
export KEEL_N KEEL_GREP KEEL_SINCE
# mawk (Debian's awk) reads a pipe a block at a time: a followed line would wait for more.
keel_live=; if awk -W version 2>&1 | grep -q mawk; then keel_live='-W interactive'; fi
keel_tmp=$(mktemp -d) || exit 1
: > "$keel_tmp/files"
for keel_d in ${dirs}; do
  for keel_f in "$keel_d"*.log; do
    [ -f "$keel_f" ] || continue
    keel_src=\${keel_f#${raw(sh`${logs}`.text)}/}; keel_src=\${keel_src%.log}
    keel_size=$(stat -c %s -- "$keel_f")
    printf '%s\\t%s\\t%s\\n' "$keel_size" "$keel_src" "$keel_f" >> "$keel_tmp/files"
    keel_day=$(date -r "$keel_f" +%Y%m%d); keel_mtime=$(date -r "$keel_f" +%Y%m%d%H%M%S)
    head -c "$keel_size" -- "$keel_f"${before} | KEEL_SRC=$keel_src KEEL_MODE=H KEEL_DAY=$keel_day KEEL_MTIME=$keel_mtime awk "$keel_awk"${after}
  done
done
keel_journal=
if [ ${sel.units.length} -gt 0 ] && command -v journalctl >/dev/null 2>&1; then
  keel_journal=1
  journalctl --no-pager -q -o short-iso ${journal}${journalSince}${journalLines} --cursor-file="$keel_tmp/cursor" 2>/dev/null |
    KEEL_SRC=journal KEEL_MODE=H awk "$keel_awk"${after}
fi
printf '%s L\\n' ${N}
${q.follow ? followPart(journal) : raw('rm -rf -- "$keel_tmp"')}
`;
}

/** New lines of every file read and of the journal, until keel ends stdin (or the connection
 *  goes): then every follower stops with this script. */
function followPart(journal: string[]): Shell {
  return sh`while IFS='	' read -r keel_size keel_src keel_f; do
  tail -c +$((keel_size + 1)) -F -- "$keel_f" 2>/dev/null | KEEL_SRC=$keel_src KEEL_MODE=F awk $keel_live "$keel_awk" &
done < "$keel_tmp/files"
if [ -n "$keel_journal" ]; then
  if [ -s "$keel_tmp/cursor" ]; then keel_from="--after-cursor=$(cat "$keel_tmp/cursor")"; else keel_from=--lines=0; fi
  journalctl --no-pager -q -o short-iso -f ${journal} "$keel_from" 2>/dev/null | KEEL_SRC=journal KEEL_MODE=F awk $keel_live "$keel_awk" &
fi
cat > /dev/null
rm -rf -- "$keel_tmp"
trap '' TERM
kill -TERM 0 2>/dev/null
`;
}
