// Replace a file so that readers see either the old bytes or the new ones, never a mix:
// write a temporary file in the same directory, fsync it, rename it over the target, fsync
// the directory. The fs calls are injectable so tests can simulate a full disk.
import * as nodeFs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeelError } from '../errors.js';

export type AtomicFs = Pick<typeof nodeFs, 'openSync' | 'writeSync' | 'fsyncSync' | 'closeSync' | 'renameSync' | 'unlinkSync' | 'statSync'>;

export const realFs: AtomicFs = nodeFs;

export function writeFileAtomic(path: string, data: Uint8Array | string, opts: { mode?: number; display?: string; fs?: AtomicFs } = {}): void {
  const fs = opts.fs ?? realFs;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let mode = opts.mode ?? 0o644;
  try {
    mode = fs.statSync(path).mode & 0o777; // keep the mode of the file being replaced
  } catch {
    // new file
  }
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', mode);
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'no space left on device' : (err as Error).message;
    throw new KeelError(
      `cannot write ${opts.display ?? path}: ${why}${code && code !== 'ENOSPC' ? '' : code ? ` (${code})` : ''}; the previous file is unchanged`,
      { cause: err },
    );
  }
  fsyncDir(dirname(path));
}

function fsyncDir(dir: string): void {
  // Makes the rename durable; not every platform lets a directory be opened, so best effort.
  try {
    const fd = nodeFs.openSync(dir, 'r');
    try {
      nodeFs.fsyncSync(fd);
    } finally {
      nodeFs.closeSync(fd);
    }
  } catch {
    // best effort
  }
}
