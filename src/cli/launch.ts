// How bin/keel.js starts the bundled CLI (dist/keel/main-<hash>.cjs, scripts/bundle.mjs):
// compiled with V8's code cache. Node 20 compiles every function of an ES module or a required
// file from its source on every run (Node 22's module.enableCompileCache is not there); with the
// cache V8 takes the functions a command compiled last time as they were. Loading the bundle
// took 51 ms instead of 81 in the bench's small no-op.
//
// The cache is a file per command (what `plan` compiles is not what `secrets edit` does),
// kept under the user's cache directory and named by the bundle's hash and V8's version: a
// rebuilt keel, or another Node, starts afresh. It is written once, after the command ran
// (so it holds what that command compiled), when there was none or V8 refused it. Anything in
// the way (no home, a read-only one) only means no cache. KEEL_NO_CACHE=1 turns it off.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

/** Set by scripts/bundle.mjs: the CLI's script beside this module, and its sha256 (20 digits). */
declare const KEEL_BUNDLE: { file: string; hash: string };

/** Entries of other builds are removed once this old (two checkouts may take turns). */
const STALE_MS = 7 * 24 * 3600_000;

/** The cache file for this command, or undefined when there is to be none. */
function cacheFile(argv: readonly string[], env: NodeJS.ProcessEnv, bundleHash: string): string | undefined {
  if (env.KEEL_NO_CACHE) return undefined;
  // XDG: a relative XDG_CACHE_HOME is ignored; without a home there is no cache.
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  if (!isAbsolute(base)) return undefined;
  const command = /^[a-z][a-z-]{0,30}$/.test(argv[2] ?? '') ? argv[2] : 'other';
  return join(base, 'keel', 'code-cache', `${bundleHash}-v8-${process.versions.v8}-${command}.bin`);
}

function readOrNothing(file: string | undefined): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Whole or not at all (a keel started meanwhile reads the old one or none), then the entries
 *  of other builds that nobody wrote for a week. */
function save(file: string, data: Buffer, bundleHash: string): void {
  try {
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, file);
    const now = Date.now();
    for (const name of readdirSync(dir)) {
      if (name.startsWith(bundleHash)) continue;
      const path = join(dir, name);
      if (now - statSync(path).mtimeMs > STALE_MS) rmSync(path, { force: true });
    }
  } catch {
    // No cache this time: the next run compiles again.
  }
}

/** V8 optimizes a function once it has run about this much bytecode (4 x V8's default 67,584
 *  bytes). keel is a short process: a 400-resource no-op on 10 hosts made V8 compile its hot
 *  functions with TurboFan in its last few hundred ms, on the cores the hosts' probes were
 *  waiting for, to run them a few ms more. With 4 x the budget the process used 365 ms of CPU
 *  instead of 415 (320 instead of 340 at 200 resources; medians of 8 runs, its threads summed); code
 *  that runs long (a 1,000-host run) is still optimized, a little later. */
const TIER_UP = '--interrupt-budget=270336';
const TIER_DEFAULT = '--interrupt-budget=67584';

type Main = (argv: string[]) => Promise<number>;

/** Runs the bundled CLI's main(argv) and returns its exit code. */
export async function launch(argv: string[]): Promise<number> {
  const file = join(dirname(fileURLToPath(import.meta.url)), KEEL_BUNDLE.file);
  const cache = cacheFile(argv, process.env, KEEL_BUNDLE.hash);
  const cachedData = readOrNothing(cache);
  // The file is ASCII and carries Node's CommonJS wrapper (scripts/bundle.mjs): read as latin1 it
  // is one byte a character and is compiled as it is, with no copy made to wrap it.
  const script = new Script(readFileSync(file, 'latin1'), { filename: file, cachedData });
  const module = { exports: {} as { main: Main } };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  // Only now: V8 refuses a code cache made under other flags, Node's own modules' too, so
  // the bundle and the modules it requires are loaded first, and the cache is made after the
  // flag is back to V8's default.
  setFlagsFromString(TIER_UP);
  let code: number;
  try {
    code = await module.exports.main(argv);
  } finally {
    setFlagsFromString(TIER_DEFAULT);
  }
  if (cache && (!cachedData || script.cachedDataRejected)) save(cache, script.createCachedData(), KEEL_BUNDLE.hash);
  return code;
}
