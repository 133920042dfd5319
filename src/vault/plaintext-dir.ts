// A private directory for the plaintext while a person edits it: in RAM (/dev/shm) when
// possible, mode 0700, and wiped (overwritten, unlinked, removed) on every way out:
// normal return, thrown error, SIGINT/SIGTERM/SIGHUP, and process exit.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PlaintextDir {
  path: string;
  /** Writes a file readable by the owner only. */
  write(name: string, text: string): string;
  /** While true, SIGINT is left to the editor (Ctrl-C inside vi must not abort keel). */
  editorRunning: boolean;
}

const HANDLED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function privateTempBase(): string {
  try {
    const shm = '/dev/shm';
    if (fs.statSync(shm).isDirectory()) {
      fs.accessSync(shm, fs.constants.W_OK);
      return shm;
    }
  } catch {
    // no RAM-backed tmpfs here
  }
  return tmpdir();
}

export async function withPlaintextDir<T>(fn: (dir: PlaintextDir) => Promise<T>, base = privateTempBase()): Promise<T> {
  const path = fs.mkdtempSync(join(base, 'keel-secrets-'));
  fs.chmodSync(path, 0o700);
  const dir: PlaintextDir = {
    path,
    editorRunning: false,
    write(name, text) {
      const file = join(path, name);
      fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
      return file;
    },
  };
  const onExit = () => wipeDir(path);
  const onSignal = (sig: NodeJS.Signals) => {
    if (sig === 'SIGINT' && dir.editorRunning) return;
    wipeDir(path);
    detach();
    // Die of the same signal, as if keel had no handler (the shell sees the usual status).
    process.kill(process.pid, sig);
  };
  const detach = () => {
    for (const s of HANDLED) process.removeListener(s, onSignal);
    process.removeListener('exit', onExit);
  };
  for (const s of HANDLED) process.on(s, onSignal);
  process.on('exit', onExit);
  try {
    return await fn(dir);
  } finally {
    wipeDir(path);
    detach();
  }
}

/** Overwrites every file in the directory with zeros, unlinks it, removes the directory.
 *  Editors leave swap and backup files next to the one they edit; those go too. */
export function wipeDir(path: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(path);
  } catch {
    return; // already gone
  }
  for (const name of names) {
    const file = join(path, name);
    try {
      const st = fs.lstatSync(file);
      if (st.isDirectory()) {
        wipeDir(file);
        continue;
      }
      if (st.isFile() && st.size > 0) {
        const fd = fs.openSync(file, 'r+');
        try {
          const zeros = Buffer.alloc(Math.min(st.size, 1 << 16));
          for (let off = 0; off < st.size; off += zeros.length) {
            fs.writeSync(fd, zeros, 0, Math.min(zeros.length, st.size - off), off);
          }
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
    } catch {
      // still unlink below
    }
    try {
      fs.unlinkSync(file);
    } catch {
      // nothing more to do
    }
  }
  try {
    fs.rmdirSync(path);
  } catch {
    // nothing more to do
  }
}
