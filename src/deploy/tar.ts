// Adding files to the tar that `git archive` makes (the release's code): what a local build
// made (deploy_local_build_outputs). Written the way git writes its own entries (ustar, owner
// root, the commit's time, modes 0664/0775), in path order: the same commit and the same
// outputs give the same bytes, whatever the files' times or the order a directory lists them.

export interface TarEntry {
  /** Relative, with `/` separators; a directory's without a trailing slash. */
  path: string;
  type: 'file' | 'dir';
  executable?: boolean;
  data?: Buffer;
}

const BLOCK = 512;

/** Where the archive's end-of-archive blocks begin (its entries end there). */
export function tarEnd(tar: Buffer): number {
  let at = 0;
  while (at + BLOCK <= tar.length) {
    const header = tar.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) return at;
    const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/[\0 ]/g, '') || '0', 8);
    if (!Number.isFinite(size)) throw new Error(`tar: unreadable size in the header at byte ${at}`);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new Error('tar: no end-of-archive blocks');
}

/** `tar` with `entries` added (sorted by path), every one dated `mtime` (seconds). */
export function appendToTar(tar: Buffer, entries: TarEntry[], mtime: number): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [tar.subarray(0, tarEnd(tar))];
  for (const e of sorted) parts.push(...entryBlocks(e, mtime));
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function entryBlocks(e: TarEntry, mtime: number): Buffer[] {
  const name = e.type === 'dir' ? `${e.path}/` : e.path;
  const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
  const mode = e.type === 'dir' || e.executable ? 0o775 : 0o664;
  const out: Buffer[] = [];
  const split = splitName(name);
  if (!split) {
    // Too long for ustar's name and prefix fields: a pax header gives the path.
    const record = paxRecord('path', name);
    out.push(header({ name: 'pax_header', prefix: '', type: 'x', mode: 0o644, size: record.length, mtime }), pad(record));
  }
  const { prefix, base } = split ?? { prefix: '', base: 'long-path (see its pax header)' };
  out.push(header({ name: base, prefix, type: e.type === 'dir' ? '5' : '0', mode, size: data.length, mtime }));
  if (data.length) out.push(pad(data));
  return out;
}

/** ustar's split of a long path into prefix (155 bytes) and name (100), at a slash. */
function splitName(path: string): { prefix: string; base: string } | null {
  const bytes = Buffer.byteLength(path);
  if (bytes <= 100) return { prefix: '', base: path };
  for (let i = path.indexOf('/'); i > 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const base = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(base) <= 100 && base) return { prefix, base };
  }
  return null;
}

/** "<length> key=value\n", the length counting itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`);
}

function header(h: { name: string; prefix: string; type: string; mode: number; size: number; mtime: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  const put = (text: string, at: number, len: number) => b.write(text, at, len, 'utf8');
  const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  put(h.name, 0, 100);
  put(octal(h.mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(h.size, 12), 124, 12);
  put(octal(h.mtime, 12), 136, 12);
  put('        ', 148, 8);
  put(h.type, 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  put(octal(0, 8), 329, 8);
  put(octal(0, 8), 337, 8);
  put(h.prefix, 345, 155);
  const sum = b.reduce((a, x) => a + x, 0);
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return b;
}

function pad(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest ? Buffer.concat([data, Buffer.alloc(BLOCK - rest)]) : data;
}
