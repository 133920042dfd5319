// `npm run demo`: one local Docker target (engine and image made ready on the way), then a
// real `keel provision` against it. Output streams through; keel's exit code is ours.
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

const up = run(['target', 'up', '--hosts', '1']);
process.exitCode = up !== 0 ? up : run(['provision', 'local']);
