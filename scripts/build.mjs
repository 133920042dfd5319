// `npm run build` (and `prepare`, so `npm ci` builds): tsc into dist/ (the bench and the
// build steps below run from there), the precompiled JSON Schema validators and templates, then the
// bundled CLI that bin/keel.js runs. Integration tests run it too before they start keel.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const node = (...args) => {
  try {
    execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  } catch (err) {
    process.exit(err.status ?? 1); // the step printed why
  }
};
node(join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json');
node(join(root, 'scripts', 'build-generated.mjs'));
node(join(root, 'scripts', 'bundle.mjs'));
