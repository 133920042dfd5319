// Progress shows one line per event: a multi-line command (a handler's SQL heredoc) is joined
// onto one line, and control characters a command printed cannot move the cursor or clear it.

const NEWLINE = ' ⏎ ';
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `text` on one line: line breaks as ⏎, other control characters dropped, at most `max`
 *  characters (the rest as …). */
export function oneLine(text: string, max = 300): string {
  const joined = printable(text.trim().replace(/[ \t]*\r?\n[ \t]*/g, NEWLINE));
  return joined.length > max ? joined.slice(0, max - 1) + '…' : joined;
}

/** A line a command wrote, as printed: its indentation kept, control characters dropped. */
export function printable(line: string): string {
  return line.replace(CONTROL, '');
}
