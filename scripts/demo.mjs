// `npm run demo`: one local Docker target (engine and image made ready on the way), then a
// real `keel provision` against it, twice. Output streams through; keel's exit code is ours.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const keel = join(root, 'bin', 'keel.js');

function run(args) {
  console.error(`\n$ keel ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [keel, ...args], { cwd: root, stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

// Provision twice: the first run converges the target, the second shows that nothing is left
// to change (0 changed, one SSH round trip per host).
const up = run(['target', 'up', '--hosts', '1']);
let code = up;
if (code === 0) code = run(['provision', 'local', '--yes']);
if (code === 0) code = run(['provision', 'local', '--yes']);
if (code === 0) console.error('\nThe page answers on the target\'s HTTP port: the http://127.0.0.1:PORT/ URL above (keel target status; keel target down)');
process.exitCode = code;
