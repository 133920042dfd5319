// `npm run lint`: no line over 160 characters (Prettier's printWidth). Prettier cannot break a
// long string or template literal, so a line it leaves too long is caught here; split the
// string into a concatenation or move part of it to a named const.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX = 160;
const GLOBS = ['src/*.ts', 'test/*.ts', 'bench/*.ts', 'scripts/*.mjs'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = trackedFiles() ?? walkedFiles();

/** The files git tracks under the globs (a checkout), or null outside a git checkout. */
function trackedFiles() {
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--', ...GLOBS], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

/** Without git (an exported tree): the same directories, walked. */
function walkedFiles() {
  const out = [];
  const walk = (dir, ext) => {
    let entries;
    try {
      entries = readdirSync(join(root, dir), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path, ext);
      else if (e.name.endsWith(ext)) out.push(relative(root, join(root, path)));
    }
  };
  for (const g of GLOBS) walk(dirname(g), g.slice(g.lastIndexOf('.')));
  return out;
}

let offenders = 0;
for (const file of files) {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  lines.forEach((line, i) => {
    // Characters, not UTF-16 code units or bytes: "→" is one.
    const n = [...line.replace(/\r$/, '')].length;
    if (n > MAX) {
      console.log(`${file}:${i + 1}: ${n} characters (max ${MAX})`);
      offenders++;
    }
  });
}
process.exit(offenders ? 1 : 0);
