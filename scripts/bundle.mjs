// Part of the build (after tsc): the CLI as one script, dist/keel/, which bin/keel.js runs.
// Node resolving and compiling the CLI's ~200 files and its dependencies' took ~150 ms of every
// command; one bundle takes a fraction of that, and less with the code cache (src/cli/launch.ts).
//
// Dependencies are bundled too, except:
// - native addons (ssh2's crypto binding, cpu-features), which are required from
//   node_modules by their package path, as their own code does (and, when they were not
//   built, fails in the same try/catch, so ssh2 falls back to its JavaScript crypto);
// - ajv, which src/validators/ loads with require() only for a schema keel did not precompile.
// A bundled CommonJS file that uses __dirname or __filename (ssh2's agent.js, for Pageant's
// helper) gets its own, resolved from node_modules when it loads. ssh2's HTTP(S) agents (HTTP
// requests through an SSH connection) are left out: keel never makes one, and loading them
// loaded Node's http, https and tls, about 2 ms of every command's start.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const modules = join(root, 'node_modules');

/** `require('./build/Release/x.node')` in a dependency -> `require('<package>/build/Release/x.node')`. */
const nativeAddons = {
  name: 'native-addons',
  setup(b) {
    b.onResolve({ filter: /\.node$/ }, (args) => {
      const file = resolve(args.resolveDir, args.path);
      const rel = relative(modules, file);
      if (rel.startsWith('..')) return { errors: [{ text: `native addon outside node_modules: ${file}` }] };
      return { path: rel.split('\\').join('/'), external: true };
    });
  },
};

/** `__dirname`/`__filename` of a bundled CommonJS file: its own, as if it were not bundled. */
const ownDirname = {
  name: 'own-dirname',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.c?js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!/\b__(dirname|filename)\b/.test(text)) return undefined;
      const rel = JSON.stringify(relative(modules, args.path).split('\\').join('/'));
      const prelude =
        `var __filename = (() => { try { return require.resolve(${rel}); } catch { return ${JSON.stringify(args.path)}; } })();\n` +
        "var __dirname = require('node:path').dirname(__filename);\n";
      return { contents: prelude + text, loader: 'js' };
    });
  },
};

/** ssh2/lib/http-agents.js as classes that say they are not there: ssh2's index requires the
 *  module and exports its two classes, which keel never uses. */
const noHttpAgents = {
  name: 'no-http-agents',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]ssh2[\\/]lib[\\/]http-agents\.js$/ }, () => ({
      contents:
        "'use strict';\n" +
        "class SSHTTPAgent { constructor() { throw new Error('keel is built without ssh2\\'s HTTP agents'); } }\n" +
        "class SSHTTPSAgent { constructor() { throw new Error('keel is built without ssh2\\'s HTTP agents'); } }\n" +
        'module.exports = { SSHTTPAgent, SSHTTPSAgent };\n',
      loader: 'js',
    }));
  },
};

/** What this build is made of: keel's sources and the locked dependencies. Whatever keel keeps
 *  between runs (src/engine/role-store.ts) is kept under it, so another build starts afresh. */
async function buildId() {
  const h = createHash('sha256');
  const walk = async (dir) =>
    (await Promise.all((await readdir(dir, { withFileTypes: true })).map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])))).flat();
  for (const f of [...(await walk(join(root, 'src'))), join(root, 'package.json'), join(root, 'package-lock.json')].sort()) {
    h.update(relative(root, f))
      .update('\0')
      .update(await readFile(f))
      .update('\0');
  }
  return h.digest('hex').slice(0, 20);
}

// Two files, built beside dist/keel/ and then moved in:
// - main-<hash>.cjs, the CLI and its dependencies as one CommonJS script: a script (not an ES
//   module) so that src/cli/launch.ts can compile it with V8's code cache;
// - launch.mjs (src/cli/launch.ts), which bin/keel.js imports: it names that main-<hash>.cjs.
// launch.mjs is moved in last, by a rename, so a keel started meanwhile (tests run several
// builds and CLIs at once) runs one whole build, old or new. Files of earlier builds go after an hour.
const outdir = join(root, 'dist', 'keel');

/** Node's own CommonJS wrapper (Module.wrap), written into the file. */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const WRAP_TAIL = '\n});';

/**
 * Every character past ASCII as a \\u escape (UTF-16 units): the same character in a string, a
 * template or a regular expression, and only text in a comment. esbuild already escapes the
 * code it prints (strings, identifiers) but keeps comments as they are, and the generated code
 * is carried as it is. A backslash right before such a character would change meaning, so the
 * build stops there; an escape where one is not allowed fails when any command loads the bundle.
 */
function asciiOnly(text) {
  return text.replace(/[^\x00-\x7f]/g, (c, at) => {
    if (text[at - 1] === '\\') throw new Error(`bundle: a backslash before ${JSON.stringify(c)} at offset ${at}: cannot escape it`);
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

// dist/generated/'s modules (scripts/build-generated.mjs ran before), carried at the end of the
// script, each one evaluated when src/generated.ts first asks for it: inside the bundle, V8's
// code cache holds the validators' and templates' functions, which it cannot for a file
// required on its own.
const generatedDir = join(root, 'dist', 'generated');
const generated = (await readdir(generatedDir)).filter((f) => f.endsWith('.cjs')).sort();
let footer = 'keelGenerated = {\n';
for (const f of generated) {
  const body = await readFile(join(generatedDir, f), 'utf8');
  const module = `(function (module, exports) {\n${body}\n})(module, module.exports);`;
  footer += `${JSON.stringify(f)}: function () {\nvar module = { exports: {} };\n${module}\nreturn module.exports;\n},\n`;
}
footer += '};';
const staging = join(root, 'dist', `keel.build-${process.pid}`);
await rm(staging, { recursive: true, force: true });
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };
await build({
  ...common,
  entryPoints: [join(root, 'src', 'cli', 'main.ts')],
  outfile: join(staging, 'main.cjs'),
  format: 'cjs',
  sourcemap: 'linked',
  define: { KEEL_BUILD_ID: JSON.stringify(await buildId()), 'import.meta.url': 'keelImportMetaUrl', KEEL_GENERATED: 'keelGenerated' },
  // import.meta.url in keel's sources (they find roles/, host/ and the generated code from it).
  banner: { js: "var keelImportMetaUrl = require('node:url').pathToFileURL(__filename).href, keelGenerated;" },
  // Assigned when the script has run to its end: before launch.ts calls main().
  footer: { js: footer },
  plugins: [nativeAddons, noHttpAgents, ownDirname],
});
// The script as launch.ts compiles it: all ASCII, so V8 holds its 3 MB as one byte a character
// (a few comments of a dependency and the generated code may hold other characters; V8 kept
// two bytes a character for all of it), and wrapped as Node wraps a CommonJS file, so nothing
// is joined to it at run time (Module.wrap made a second copy of the whole text). The wrapper
// has no newline: lines and columns are those Node's own wrapping gives, for the source map.
const text = asciiOnly((await readFile(join(staging, 'main.cjs'))).toString('utf8'));
const wrapped = `${WRAP_HEAD}${text.replace(/\/\/# sourceMappingURL=main\.cjs\.map\s*$/, '')}${WRAP_TAIL}`;
const hash = createHash('sha256').update(wrapped).digest('hex').slice(0, 20);
const mainFile = `main-${hash}.cjs`;
// The source map keeps its name inside the script: rename both, and the comment that links them.
await rm(join(staging, 'main.cjs'));
await writeFile(join(staging, mainFile), `${wrapped}\n//# sourceMappingURL=${mainFile}.map\n`);
await rename(join(staging, 'main.cjs.map'), join(staging, `${mainFile}.map`));
await build({
  ...common,
  entryPoints: [join(root, 'src', 'cli', 'launch.ts')],
  outfile: join(staging, 'launch.mjs'),
  format: 'esm',
  define: { KEEL_BUNDLE: JSON.stringify({ file: mainFile, hash }) },
});
await mkdir(outdir, { recursive: true });
const built = await readdir(staging);
const last = ['launch.mjs'];
for (const f of [...built.filter((f) => !last.includes(f)), ...last]) await rename(join(staging, f), join(outdir, f));
await rm(staging, { recursive: true, force: true });
const keep = new Set(built);
for (const f of await readdir(outdir)) {
  if (!keep.has(f) && Date.now() - (await stat(join(outdir, f))).mtimeMs > 3600_000) await rm(join(outdir, f), { force: true });
}
const kb = Math.round((await stat(join(outdir, mainFile))).size / 1024);
process.stderr.write(`bundle: ${mainFile}, ${kb} KB in dist/keel/\n`);
