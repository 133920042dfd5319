// A private directory for the plaintext while a person edits it: in RAM (/dev/shm) when
// possible, mode 0700, and wiped (overwritten, unlinked, removed) on every way out:
// normal return, thrown error, SIGINT/SIGTERM/SIGHUP, and process exit. SIGKILL leaves no way
// out, so the directory's name says whose it is (pid, its start time, its pid namespace) and
// the next `keel secrets` command removes it once that process is gone.
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
  const self = processTag(process.pid);
  const path = fs.mkdtempSync(join(base, `keel-secrets-${process.pid}-${self.start}-${self.ns}-`));
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

const OWNED = /^keel-secrets-(\d+)-(\d+)-(\d+)-[A-Za-z0-9]{6}$/;

/** What tells a process apart from a later one with the same pid: its start time (clock ticks
 *  since boot) and its pid namespace. 0 where /proc cannot say (not Linux). */
function processTag(pid: number): { start: number; ns: number; state?: string } {
  let start = 0;
  let state: string | undefined;
  let ns = 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    state = fields[0];
    start = Number(fields[19]) || 0;
  } catch {
    // no such process, or no /proc
  }
  try {
    ns = Number(/\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${pid}/ns/pid`))?.[1] ?? 0);
  } catch {
    // no /proc, or not ours to read
  }
  return { start, ns, state };
}

function isGone(pid: number, start: number, ns: number): boolean {
  if (fs.existsSync('/proc/self/stat')) {
    const mine = processTag(process.pid);
    if (ns && mine.ns && ns !== mine.ns) return false; // another pid namespace: we cannot tell
    const now = processTag(pid);
    if (now.state === undefined) return true; // no such process
    if (now.state === 'Z' || now.state === 'X') return true; // killed, not yet reaped
    return start !== 0 && now.start !== start; // the pid now belongs to a later process
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Removes (wipes) the plaintext directories of `keel secrets edit` processes that died without
 *  cleaning up (SIGKILL, power loss of a VM with a persistent /dev/shm...). Only this user's,
 *  only when the owner is certainly gone. Returns one message per directory for stderr. */
export function sweepStalePlaintext(base = privateTempBase()): string[] {
  const messages: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return messages;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const m = OWNED.exec(name);
    if (!m) continue;
    const [pid, start, ns] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const path = join(base, name);
    try {
      const st = fs.lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
    } catch {
      continue;
    }
    if (pid === process.pid || !isGone(pid, start, ns)) continue;
    wipeDir(path);
    if (!fs.existsSync(path)) messages.push(`removed leftover plaintext of a killed \`keel secrets edit\` (pid ${pid}): ${path}`);
  }
  return messages;
}
