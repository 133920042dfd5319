// The local terminal joined to a remote process (src/ops/terminal.ts): keystrokes go through
// raw, a resize follows, and the terminal is put back whatever happens.
import { describe, expect, it } from 'vitest';
import { bridge, exitCodeOf, type Terminal } from '../../src/ops/terminal.js';
import type { ProcessExit, RemoteProcess } from '../../src/ssh/link.js';

function fakes() {
  const events: string[] = [];
  let input: ((d: Buffer) => void) | undefined;
  let resize: (() => void) | undefined;
  let size = { rows: 24, cols: 80 };
  const terminal: Terminal = {
    isTTY: true,
    size: () => size,
    term: 'xterm',
    setRaw: (on) => events.push(`raw ${on}`),
    onInput: (fn) => ((input = fn), () => events.push('input off')),
    onResize: (fn) => ((resize = fn), () => events.push('resize off')),
    write: () => undefined,
  };
  let exit: (x: ProcessExit) => void = () => undefined;
  const proc: RemoteProcess = {
    write: (d) => void events.push(`write ${JSON.stringify(String(d))}`),
    end: () => undefined,
    resize: (rows, cols) => void events.push(`resize ${rows}x${cols}`),
    signal: () => undefined,
    close: () => undefined,
    exited: new Promise((r) => (exit = r)),
  };
  return {
    events,
    terminal,
    proc,
    type: (s: string) => input!(Buffer.from(s)),
    resizeTo: (rows: number, cols: number) => ((size = { rows, cols }), resize!()),
    exit: (x: ProcessExit) => exit(x),
  };
}

describe('bridge', () => {
  it('sends keystrokes as they are (Ctrl-C too), follows the window, and puts the terminal back at the end', async () => {
    const f = fakes();
    const done = bridge(f.terminal, f.proc);
    f.type('ls\r');
    f.type('\x03');
    f.resizeTo(50, 132);
    f.exit({ code: 130 });
    expect(await done).toEqual({ code: 130 });
    expect(f.events).toEqual(['raw true', 'write "ls\\r"', 'write "\\u0003"', 'resize 50x132', 'resize off', 'input off', 'raw false']);
  });

  it('an exit becomes an exit code: its code, 128 + a signal, 255 when the connection was lost', () => {
    expect(exitCodeOf({ code: 3 })).toBe(3);
    expect(exitCodeOf({ code: null, signal: 'INT' })).toBe(130);
    expect(exitCodeOf({ code: null, lost: 'connection reset' })).toBe(255);
  });
});
