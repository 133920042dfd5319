// The local terminal joined to a remote one (keel exec -i, keel ssh): keystrokes go to the
// host raw (Ctrl-C included: the remote terminal turns it into SIGINT for the remote
// process), the window size follows, and the local terminal is put back as it was at the end.
import { constants as osConstants } from 'node:os';
import type { ProcessExit, Pty, RemoteProcess } from '../ssh/link.js';

export interface Terminal {
  readonly isTTY: boolean;
  size(): { rows: number; cols: number };
  term: string;
  /** Raw mode on (true) or back off. */
  setRaw(on: boolean): void;
  onInput(fn: (d: Buffer) => void): () => void;
  onResize(fn: () => void): () => void;
  write(d: Buffer): void;
}

/** This process's own terminal. */
export function processTerminal(): Terminal {
  const stdin = process.stdin;
  const stdout = process.stdout;
  return {
    isTTY: Boolean(stdin.isTTY && stdout.isTTY),
    size: () => ({ rows: stdout.rows || 24, cols: stdout.columns || 80 }),
    term: process.env.TERM || 'xterm-256color',
    setRaw(on) {
      if (stdin.isTTY) stdin.setRawMode(on);
    },
    onInput(fn) {
      stdin.on('data', fn);
      stdin.resume();
      return () => {
        stdin.removeListener('data', fn);
        // Let the event loop end: nothing reads the terminal any more.
        stdin.pause();
      };
    },
    onResize(fn) {
      stdout.on('resize', fn);
      return () => stdout.removeListener('resize', fn);
    },
    write: (d) => void stdout.write(d),
  };
}

export function ptyOf(t: Terminal): Pty {
  return { ...t.size(), term: t.term };
}

/** Join `t` to `proc` (started with a pty) until the remote process exits. */
export async function bridge(t: Terminal, proc: RemoteProcess): Promise<ProcessExit> {
  t.setRaw(true);
  const offInput = t.onInput((d) => proc.write(d));
  const offResize = t.onResize(() => {
    const { rows, cols } = t.size();
    proc.resize(rows, cols);
  });
  try {
    return await proc.exited;
  } finally {
    offResize();
    offInput();
    t.setRaw(false);
  }
}

/** A remote exit as a local exit code: its code, 128 + a signal's number, 255 when lost. */
export function exitCodeOf(x: ProcessExit): number {
  if (x.code !== null) return x.code;
  const n = x.signal ? (osConstants.signals as Record<string, number>)[`SIG${x.signal}`] : undefined;
  return n ? 128 + n : 255;
}
